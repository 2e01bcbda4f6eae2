// GetObject: a download that Python reads as chunks, into its own buffers, or as one whole buffer.
#pragma once

#include "buffer.h"
#include "client.h"
#include "object_info.h"
#include "request.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

namespace s3tc {

// The CRT side of a download. Memory is bounded by the read window while streaming; once the
// caller wants the whole body it goes straight into one buffer of its final size.
class Download : public MetaRequest {
public:
    uint64_t range_start = 0;  // object offset of the first byte asked for
    bool ranged = false;

    bool whole = false;                // bytes go into `whole_buffer` at their offset
    std::shared_ptr<Buffer> whole_buffer;
    uint64_t whole_base = 0;           // object offset of whole_buffer[0]
    uint64_t delivered = 0;            // bytes received in total

    std::deque<std::shared_ptr<Buffer>> chunks;  // streaming: received, not yet read
    size_t front_used = 0;                       // bytes of chunks.front() already read
    uint64_t consumed = 0;                       // bytes handed to the caller while streaming

    uint64_t content_length = 0;
    ObjectInfo info;

    // With `mutex` held: switch to whole-body mode, moving what is queued into the buffer.
    void become_whole();
    // With `mutex` held: let the CRT fetch `bytes` more.
    void open_window(uint64_t bytes);

protected:
    int on_headers() override;
    int on_body(aws_byte_cursor data, uint64_t offset) override;
    void on_finished() override;
};

class GetStream {
public:
    // `end` is exclusive; no `start` means from the first byte, no `end` means to the last.
    // `whole` asks for one buffer of the whole body (parts may arrive out of order).
    GetStream(std::shared_ptr<Client> client, const std::string &bucket, const std::string &key,
              std::optional<uint64_t> start, std::optional<uint64_t> end, bool whole);
    ~GetStream();
    GetStream(const GetStream &) = delete;
    GetStream &operator=(const GetStream &) = delete;

    // Waits for the response headers. Size is the whole object's size.
    ObjectInfo info();
    // The rest of the body in one buffer.
    std::shared_ptr<Buffer> read_all();
    // The next chunk, or nullptr at the end.
    std::shared_ptr<Buffer> next_chunk();
    // Fills `out` (up to `size` bytes) and returns how many bytes it wrote; fewer only at the end.
    size_t readinto(uint8_t *out, size_t size);
    // Stops the download.
    void close();

private:
    void wait_for(const std::function<bool()> &ready);
    void throw_if_failed_locked();

    std::shared_ptr<Client> client_;
    std::shared_ptr<Download> download_;
    bool empty_range_ = false;
    int pid_;
};

}  // namespace s3tc
