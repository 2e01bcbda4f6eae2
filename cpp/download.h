// The CRT side of a GetObject: its callbacks, and the state they share with the download's readers.
#pragma once

#include "chunk_queue.h"
#include "landing.h"
#include "landing_pool.h"
#include "object_info.h"
#include "object_version.h"
#include "request.h"

#include <cstdint>
#include <memory>
#include <variant>

namespace s3tc {

// What a download's CRT callbacks and its readers share; only reachable under the request's lock. Its body is in
// one of two modes: streamed, received parts queued for a reader (ChunkQueue); or landing, the rest going to one
// destination the caller gave (Landing). attach() switches from the first to the second, detach() back.
struct DownloadState : RequestState {
    uint64_t range_start = 0;  // object offset of the first byte asked for
    uint64_t part_size = 0;    // the CRT asks for part i at object offset range_start + i * part_size
    uint32_t regions = 1;      // the runs of parts the CRT takes turns between (LandingSite::regions)
    bool ranged = false;
    bool whole = false;  // the caller wants the rest in one piece: parts may arrive out of order

    std::variant<ChunkQueue, Landing> body;
    uint64_t consumed = 0;   // bytes handed to the caller so far
    uint64_t delivered = 0;  // bytes received in total

    // The client's pool, which hands the CRT slices of a destination to receive parts in (landing_pool.h), and whose
    // lending budget bounds what a stream's queue keeps in the CRT's buffers.
    LandingPool *pool = nullptr;

    uint64_t initial_window = 0;    // bytes the CRT may fetch ahead of delivery before the window is opened
    uint64_t least_read_ahead = 0;  // the window a running download keeps at least (Client::least_read_ahead)
    uint64_t max_window = 0;        // the most a download fetches ahead: one part per connection
    uint64_t stream_ahead = 0;      // what a stream fetches ahead now: least_read_ahead, widened while its reader waits
    uint64_t content_length = 0;
    // An attempt was answered 200 with no body and no Content-Range: a server that ignores the range asked of an
    // empty object (nginx serving a file), which the CRT then fails for the missing Content-Range.
    bool answered_empty_whole = false;
    ObjectInfo info;
    std::shared_ptr<ObjectVersion> version;  // the reader's pinned version, if it has one

    // The body's mode: the one that applies, or null.
    ChunkQueue *queue() { return std::get_if<ChunkQueue>(&body); }
    Landing *landing() { return std::get_if<Landing>(&body); }
    // The next unread object offset.
    uint64_t read_position() const { return range_start + consumed; }
    // Sends the rest of the body to `target` (`size` bytes), starting with what is queued. Returns the object
    // offset of target[0]. Refused (std::logic_error) while a reader copies out of the queue.
    uint64_t attach(uint8_t *target, uint64_t size);
    // Stops writing to the destination (the caller is about to drop it): back to an empty queue. The CRT may still be
    // receiving into slices of it: wait for the returned slices' release (without the lock) before the memory goes.
    [[nodiscard]] std::shared_ptr<Slices> detach();
    // Lets the CRT fetch `bytes` more.
    void open_window(uint64_t bytes);
    // A stream's reader is about to wait for the next part: the parts in flight do not cover the time to the first
    // byte of the next (a far server), so one more part is fetched ahead from now on, up to max_window.
    void widen_stream_window();
    // Whether no byte will land any more (the download finished and its parts are in).
    bool landing_over() {
        Landing *l = landing();
        return finished && (l == nullptr || l->idle());
    }
};

class Download : public MetaRequest {
public:
    explicit Download(OperationContext context);
    ~Download() override;

    // The download's state, for the holder of its lock.
    static DownloadState &of(Locked &locked) { return static_cast<DownloadState &>(*locked); }
    // Copies the next part waiting in the CRT's buffer to its place in the destination; the lock is let go during
    // the copy. False when no part waits, or the destination was let go of meanwhile.
    static bool copy_next_part(Locked &locked);
    // Once the download finished: waits (lock let go) until the CRT released every slice, then copies the
    // misplaced parts to their places.
    static void place_misplaced(Locked &locked);

protected:
    int on_headers(Locked &locked) override;
    int on_body(Locked &locked, aws_byte_cursor data, uint64_t offset, aws_s3_buffer_ticket *ticket) override;
    void on_finished(Locked &locked) override;
    void on_attempt(aws_s3_request_metrics *metrics) override;

private:
    // on_body in landing mode.
    int land_part(DownloadState &d, Landing &landing, aws_byte_cursor data, uint64_t offset,
                  aws_s3_buffer_ticket *ticket);
};

}  // namespace s3tc
