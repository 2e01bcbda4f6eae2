// GetObject as Python reads it: as chunks, into its own buffers, or as one whole buffer (download.h holds the
// CRT side, chunk_queue.h and landing.h the two modes of its body).
#pragma once

#include "buffer.h"
#include "client.h"
#include "download.h"
#include "fork.h"
#include "lander.h"
#include "object_info.h"
#include "object_version.h"
#include "staged_body.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace s3tc {

class GetStream {
public:
    // `end` is exclusive; no `start` means from the first byte, no `end` means to the last.
    // `whole` says the caller will want the body in one piece: parts are then fetched out of order.
    // `version`, when given, pins the download to the object version the reader saw first.
    GetStream(std::shared_ptr<Client> client, const std::string &bucket, const std::string &key,
              std::optional<uint64_t> start, std::optional<uint64_t> end, bool whole,
              std::shared_ptr<ObjectVersion> version = nullptr);
    ~GetStream();
    GetStream(const GetStream &) = delete;
    GetStream &operator=(const GetStream &) = delete;

    // Waits for the response headers. Size is the whole object's size.
    ObjectInfo info();
    // Waits for the headers; the number of body bytes not read yet.
    uint64_t remaining();
    // Receives the rest of the body into `target` (`remaining()` bytes), which must stay valid
    // until this returns. Each part is copied once, straight to its offset.
    void receive_rest(uint8_t *target, uint64_t size);
    // Starts receiving the rest of the body into `target` (`size` = remaining() bytes) and returns at once
    // (a Lander). `owner` keeps `target` alive; the stream drops it only after the lander ended. A body of one
    // part or less is received before this returns.
    void land(uint8_t *target, uint64_t size, std::shared_ptr<void> owner);
    // After land(): Lander::wait_landed and has_landed.
    void wait_landed(uint64_t start, uint64_t end);
    bool has_landed(uint64_t start, uint64_t end);
    // The rest of the body in one native buffer.
    std::shared_ptr<Buffer> read_all();
    // The next chunk, or nullptr at the end. It may borrow the CRT's buffer of its part (Buffer::borrowed): copy it
    // out before the stream goes.
    std::shared_ptr<Buffer> next_chunk();
    // Fills `out` (up to `size` bytes) and returns how many bytes it wrote; fewer only at the end.
    size_t readinto(uint8_t *out, size_t size);
    // Stops the download.
    void close();
    // The object offset of the next byte a read would return.
    uint64_t tell();
    const std::string &bucket() const { return bucket_; }
    const std::string &key() const { return key_; }

private:
    // Waits (GIL released, Ctrl-C cancels the download) until ready(state) holds; returns holding the lock.
    Download::Locked wait_for(const std::function<bool(DownloadState &)> &ready);
    // Copies parts into the attached destination as they arrive, until the download finished.
    void copy_parts_until_finished();
    // Whether the rest of the body goes to one destination (parts arrive out of order).
    bool whole_mode();
    // Throws when the stream is closed, or its body is landing (it has one destination, and reads of another kind
    // would race it).
    void check_readable() const;
    // Stops writing to the caller's memory; returns once nothing will (the CRT released every slice of it).
    void let_go_of_destination();

    std::shared_ptr<Client> client_;
    std::string bucket_;
    std::string key_;
    std::shared_ptr<Download> download_;
    StagedBody staged_;
    bool empty_range_ = false;
    bool closed_ = false;
    std::unique_ptr<Lander> lander_;
    std::shared_ptr<void> landed_at_once_;  // land() of a body of one part: the destination's owner, kept
    MadeInProcess made_in_;
};

}  // namespace s3tc
