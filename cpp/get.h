// GetObject: a download that Python reads as chunks, into its own buffers, or as one whole buffer.
#pragma once

#include "buffer.h"
#include "buffer_recycler.h"
#include "client.h"
#include "fork.h"
#include "landing_pool.h"
#include "object_info.h"
#include "object_version.h"
#include "part_buffer.h"
#include "request.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace s3tc {

// A received piece of the body, not yet handed to the caller.
struct Chunk {
    uint64_t offset;  // object offset of data[0]
    std::shared_ptr<Buffer> data;
};

// What a download's CRT callbacks and its readers share; only reachable under the request's lock. While
// streaming, received chunks wait in a queue whose size the read window bounds, each in the CRT's part buffer it
// arrived in while the pool lends it (LandingPool::lend), else in a copy. Once the caller gives a
// destination for the rest of the body, queued chunks are copied there and every later part is copied straight
// to its offset in it.
struct DownloadState : RequestState {
    uint64_t range_start = 0;     // object offset of the first byte asked for
    uint64_t part_size = 0;       // the CRT asks for part i at object offset range_start + i * part_size
    uint32_t spread_regions = 1;  // the runs of parts the CRT takes turns between (LandingSite::regions)
    bool ranged = false;
    bool whole = false;  // the caller wants the rest in one piece: parts may arrive out of order

    std::deque<Chunk> chunks;  // only the reader takes chunks out (GetStream::readinto, next_chunk)
    bool reading = false;      // a readinto() is copying out of chunks, the lock let go during its copies
    std::shared_ptr<BufferRecycler> recycler;  // a stream's chunk buffers, reused (null in whole mode)
    uint64_t consumed = 0;                     // bytes handed to the caller so far
    uint64_t delivered = 0;                    // bytes received in total

    uint8_t *destination = nullptr;  // where the rest goes, once given; owned by the caller
    uint64_t destination_size = 0;
    // Parts for the destination, still in the CRT's buffers: a thread of ours copies them in (the caller's,
    // waiting, or the stream's lander), which leaves the CRT's one delivery thread free for the next part.
    std::deque<PartBuffer> to_copy;
    int copying = 0;  // parts taken from to_copy whose bytes are still being copied
    // Object ranges [start, end) already in the destination, merged: parts land in any order.
    std::map<uint64_t, uint64_t> landed;
    // The client's pool, which hands the CRT slices of the destination to receive parts in (landing_pool.h), and
    // the slices handed out for this destination (null while it has none).
    LandingPool *pool = nullptr;
    std::shared_ptr<Slices> slices;
    // Parts that arrived outside their place while their place was a slice the CRT could still be writing (only if
    // the pool's count of parts went astray): kept aside until every slice is released.
    std::deque<Chunk> misplaced;

    uint64_t initial_window = 0;  // bytes the CRT may fetch ahead of delivery before the window is opened
    uint64_t least_ahead = 0;     // the window a running download keeps at least (Client::least_read_ahead)
    uint64_t max_window = 0;      // the most a download fetches ahead: one part per connection
    uint64_t stream_ahead = 0;    // what a stream fetches ahead now: least_ahead, widened while its reader waits
    uint64_t content_length = 0;
    // An attempt was answered 200 with no body and no Content-Range: a server that ignores the range asked of an
    // empty object (nginx serving a file), which the CRT then fails for the missing Content-Range.
    bool answered_empty_whole = false;
    ObjectInfo info;
    std::shared_ptr<ObjectVersion> version;  // the reader's pinned version, if it has one

    // The next unread object offset.
    uint64_t read_position() const { return range_start + consumed; }
    // Send the rest of the body to `target` (`size` bytes), starting with what is queued. Returns the object offset
    // of target[0].
    uint64_t attach(uint8_t *target, uint64_t size);
    // Stop writing to the destination (the caller is about to drop it). The CRT may still be receiving into slices
    // of it: wait for the returned slices' release (without the lock) before the memory goes.
    [[nodiscard]] std::shared_ptr<Slices> detach();
    // Let the CRT fetch `bytes` more.
    void open_window(uint64_t bytes);
    // A stream's reader is about to wait for the next part: the parts in flight do not cover the time to the first
    // byte of the next (a far server), so one more part is fetched ahead from now on, up to max_window.
    void widen_stream_window();
    // Whether every byte of the object range [start, end) is in the destination.
    bool has_landed(uint64_t start, uint64_t end) const;
    // Whether no byte will land any more (the download finished and its parts are in).
    bool landing_over() const { return finished && to_copy.empty() && copying == 0 && misplaced.empty(); }
    void mark_landed(uint64_t start, uint64_t end);
};

// The CRT side of a download.
class Download : public MetaRequest {
public:
    explicit Download(OperationContext context);
    ~Download() override;

    // The download's state, for the holder of its lock.
    static DownloadState &of(Locked &locked) { return static_cast<DownloadState &>(*locked); }
    // Copies the next queued part to its place in `target`, the destination whose first byte is object offset
    // `base`; the lock is let go during the copy. False when no part is queued.
    static bool copy_next_part(Locked &locked, uint8_t *target, uint64_t base);
    // Once the download finished: waits (lock let go) until the CRT released every slice, then copies the
    // misplaced parts to their places.
    static void place_misplaced(Locked &locked, uint8_t *target, uint64_t base);

protected:
    int on_headers(Locked &locked) override;
    int on_body(Locked &locked, aws_byte_cursor data, uint64_t offset, aws_s3_buffer_ticket *ticket) override;
    void on_finished(Locked &locked) override;
    void on_attempt(aws_s3_request_metrics *metrics) override;
};

// The body received whole while the caller reads it in pieces (whole mode, a read smaller than the rest).
class StagedBody {
public:
    explicit operator bool() const { return buffer_ != nullptr; }
    void stage(std::shared_ptr<Buffer> buffer) {
        buffer_ = std::move(buffer);
        used_ = 0;
    }
    size_t unread() const { return buffer_ ? buffer_->size() - used_ : 0; }
    // Copies up to `size` unread bytes to `out`; how many it copied.
    size_t take(uint8_t *out, size_t size);
    void clear() { buffer_.reset(); }

private:
    std::shared_ptr<Buffer> buffer_;
    size_t used_ = 0;
};

// Landing mode: a thread of the stream copies each part of the rest of the body to its offset in the caller's
// memory as it arrives, while the caller reads what has landed.
class Lander {
public:
    // Starts copying the rest of `download`'s body into `target` (`size` bytes); `owner` keeps `target` alive
    // until the thread ended.
    Lander(std::shared_ptr<Download> download, uint8_t *target, uint64_t size, std::shared_ptr<void> owner);
    // Ends the thread (after the part it is copying), then lets go of the destination.
    ~Lander();
    Lander(const Lander &) = delete;
    Lander &operator=(const Lander &) = delete;

    // Waits until the object's bytes [start, end) have landed, or no more will (a range past the end); throws
    // the download's failure if it failed first.
    void wait_landed(uint64_t start, uint64_t end);
    // Whether the object's bytes [start, end) have landed, without waiting.
    bool has_landed(uint64_t start, uint64_t end);

private:
    std::shared_ptr<Download> download_;
    std::thread thread_;
    std::shared_ptr<void> owner_;
    MadeInProcess made_in_;
};

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
    // Copies parts into the attached destination (object offset `base` at target[0]) as they arrive, until the
    // download finished.
    void copy_parts_until_finished(uint8_t *target, uint64_t base);
    // Whether the rest of the body goes to one destination (parts arrive out of order).
    bool whole_mode();
    // Throws when the body is landing: it has one destination, and reads of another kind would race it.
    void refuse_while_landing() const;
    // Stops writing to the caller's memory; returns once nothing will (the CRT released every slice of it).
    void let_go_of_destination();

    std::shared_ptr<Client> client_;
    std::string bucket_;
    std::string key_;
    std::shared_ptr<Download> download_;
    StagedBody staged_;
    bool empty_range_ = false;
    std::unique_ptr<Lander> lander_;
    std::shared_ptr<void> landed_at_once_;  // land() of a body of one part: the destination's owner, kept
    MadeInProcess made_in_;
};

}  // namespace s3tc
