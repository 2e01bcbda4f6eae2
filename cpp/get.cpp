#include "get.h"

#include "runtime.h"
#include "text.h"
#include "wait.h"

#include <aws/common/error.h>
#include <aws/s3/s3.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>

namespace s3tc {
namespace {

constexpr uint64_t whole_object_part_size = 4ull << 20;
// A read copies this much or more out of a received chunk without holding the download's lock, so that the CRT's
// delivery thread, which takes the lock for every part, does not wait on the copy (and its page faults).
constexpr size_t copy_without_lock = 64 * 1024;

bool has_chunk(DownloadState &d) {
    ChunkQueue *queue = d.queue();
    return queue == nullptr || !queue->chunks.empty();  // a landing body has no chunks: the caller says so
}

// The queue a stream's reader takes chunks from; std::logic_error when the body is landing, or another thread is
// reading the stream.
ChunkQueue &stream_queue(DownloadState &d) {
    ChunkQueue *queue = d.queue();
    if (queue == nullptr) throw std::logic_error("the body of this stream is already being received");
    if (queue->reading) throw std::logic_error("this stream is already being read by another thread");
    return *queue;
}

}  // namespace

GetStream::GetStream(std::shared_ptr<Client> client, const std::string &bucket, const std::string &key,
                     std::optional<uint64_t> start, std::optional<uint64_t> end, bool whole,
                     std::shared_ptr<ObjectVersion> version)
    : client_(std::move(client)),
      bucket_(bucket),
      key_(key),
      download_(std::make_shared<Download>(client_->context("GetObject", bucket, key))) {
    if (start && end && *end < *start) {
        throw std::invalid_argument("range end " + std::to_string(*end) + " is before its start " +
                                    std::to_string(*start));
    }
    const uint64_t range_start = start.value_or(0);
    const bool ranged = start.has_value() || end.has_value();
    // Set before start(), so no callback can run yet; the state is reached through its lock all the same.
    {
        auto locked = download_->lock();
        DownloadState &d = Download::of(locked);
        d.info.key = key;
        d.whole = whole;
        d.range_start = range_start;
        d.ranged = ranged;
        d.version = version;
        d.initial_window = client_->initial_read_window();
        d.least_read_ahead = client_->least_read_ahead();
        d.pool = &client_->landing_pool();
    }
    if (end && *end == range_start) {
        empty_range_ = true;  // nothing to fetch
        return;
    }

    auto target = client_->target("GET", bucket, key);
    if (ranged) {
        std::string range = "bytes=" + std::to_string(range_start) + "-";
        if (end) range += std::to_string(*end - 1);
        aws_http_headers_set(aws_http_message_get_headers(target->message()), aws_byte_cursor_from_c_str("Range"),
                             aws_byte_cursor_from_array(range.data(), range.size()));
    }
    const std::string pinned_etag = version ? version->if_match() : "";
    if (!pinned_etag.empty()) {
        aws_http_headers_set(aws_http_message_get_headers(target->message()), aws_byte_cursor_from_c_str("If-Match"),
                             aws_byte_cursor_from_array(pinned_etag.data(), pinned_etag.size()));
    }
    aws_s3_meta_request_options options = {};
    options.type = AWS_S3_META_REQUEST_TYPE_GET_OBJECT;
    // In whole mode each part lands at its own offset, so it need not wait for the part before it.
    options.out_of_order_delivery = whole ? AWS_TRIBOOL_TRUE : AWS_TRIBOOL_UNSET;
    // Whole objects come in 4 MiB parts: twice the connections of 8 MiB parts within the same memory bound, which
    // is what counts where each connection is slow, as S3's are (measured in commit d32dd24).
    const uint64_t part_size = whole ? whole_object_part_size : client_->config().part_size;
    options.part_size = part_size;
    // No object_size_hint (crt_internals.h, item 4).
    aws_s3_checksum_config checksums;
    client_->apply_checksums(options, checksums, false);
    {
        auto locked = download_->lock();
        DownloadState &d = Download::of(locked);
        d.part_size = part_size;
        d.regions = whole ? client_->max_connections_per_request() : 1;  // one run per connection
        d.max_window = uint64_t{client_->max_connections_per_request()} * part_size;
        if (!whole) d.queue()->recycler = std::make_shared<BufferRecycler>(part_size, d.least_read_ahead / part_size);
    }
    target->apply(options);
    download_->start(*client_, options);
    if (!whole) {  // a stream reads ahead from its start; a whole download opens its window in attach()
        auto locked = download_->lock();
        DownloadState &d = Download::of(locked);
        d.open_window(d.least_read_ahead - d.initial_window);
        d.stream_ahead = d.least_read_ahead;
    }
}

GetStream::~GetStream() {
    if (made_in_.is_current()) download_->cancel();  // else the parent's request (fork.h, rule 1)
    lander_.reset();
}

void GetStream::land(uint8_t *target, uint64_t size, std::shared_ptr<void> owner) {
    check_readable();
    if (staged_) throw std::logic_error("the body of this stream is already being received");
    if (size <= whole_object_part_size) {  // nothing to overlap: one part
        receive_rest(target, size);
        landed_at_once_ = std::move(owner);
        return;
    }
    lander_ = std::make_unique<Lander>(download_, target, size, std::move(owner));
}

void GetStream::wait_landed(uint64_t start, uint64_t end) {
    if (lander_) {
        lander_->wait_landed(start, end);
        return;
    }
    if (empty_range_) return;
    auto locked = download_->lock();  // received before land() returned
    locked->throw_if_failed(download_->context());
}

bool GetStream::has_landed(uint64_t start, uint64_t end) {
    return lander_ ? lander_->has_landed(start, end) : true;  // or received before land() returned
}

void GetStream::check_readable() const {
    if (closed_) throw std::logic_error("the stream is closed");
    if (lander_) throw std::logic_error("the body of this stream is already being received");
}

Download::Locked GetStream::wait_for(const std::function<bool(DownloadState &)> &ready) {
    {
        WaitingOnS3 waiting(download_->context().operation);
        auto locked = download_->lock();
        DownloadState &d = Download::of(locked);
        wait_interruptibly(
            locked.unique_lock(), locked.changed(), [&] { return ready(d); }, [this] { download_->cancel(); });
    }
    // The GIL is back (the caller builds Python values); the state is looked at again under the lock.
    return download_->lock();
}

ObjectInfo GetStream::info() {
    if (empty_range_) {
        auto locked = download_->lock();
        return Download::of(locked).info;
    }
    auto locked = wait_for([](DownloadState &d) { return d.headers_received || d.finished; });
    locked->throw_if_failed(download_->context());
    return Download::of(locked).info;
}

uint64_t GetStream::remaining() {
    if (closed_) throw std::logic_error("the stream is closed");
    if (empty_range_) return 0;
    if (staged_) return staged_.unread();
    auto locked = wait_for([](DownloadState &d) { return d.headers_received || d.finished; });
    DownloadState &d = Download::of(locked);
    d.throw_if_failed(download_->context());
    return d.content_length - d.consumed;
}

void GetStream::receive_rest(uint8_t *target, uint64_t size) {
    check_readable();
    if (staged_) {  // already received: what is left of it
        staged_.take(target, static_cast<size_t>(size));
        staged_.clear();
        return;
    }
    if (empty_range_ || size == 0) return;
    {
        auto locked = download_->lock();
        Download::of(locked).attach(target, size);
    }
    try {
        copy_parts_until_finished();
        auto locked = download_->lock();
        Download::place_misplaced(locked);
    } catch (...) {
        download_->cancel();
        let_go_of_destination();  // the caller's memory may go away as soon as we return
        throw;
    }
    let_go_of_destination();
    auto locked = download_->lock();
    DownloadState &d = Download::of(locked);
    d.throw_if_failed(download_->context());
    d.consumed += size;
}

void GetStream::let_go_of_destination() {
    std::shared_ptr<Slices> slices;
    {
        auto locked = download_->lock();
        slices = Download::of(locked).detach();
    }
    // In a forked child the parent's CRT threads, which would release the slices, do not exist (fork.h, rule 1).
    if (slices != nullptr && made_in_.is_current()) slices->wait_released();
}

void GetStream::copy_parts_until_finished() {
    WaitingOnS3 waiting(download_->context().operation);
    auto locked = download_->lock();
    DownloadState &d = Download::of(locked);
    for (;;) {
        wait_interruptibly(
            locked.unique_lock(), locked.changed(),
            [&d] { return d.finished || (d.landing() != nullptr && !d.landing()->to_copy.empty()); },
            [this] { download_->cancel(); });
        if (!Download::copy_next_part(locked)) return;  // finished, and every part is in
    }
}

std::shared_ptr<Buffer> GetStream::read_all() {
    const uint64_t size = remaining();
    auto body = std::make_shared<Buffer>(static_cast<size_t>(size));
    receive_rest(body->data(), size);
    return body;
}

bool GetStream::whole_mode() {
    auto locked = download_->lock();
    return Download::of(locked).whole;
}

std::shared_ptr<Buffer> GetStream::next_chunk() {
    check_readable();
    if (empty_range_) return nullptr;
    if (whole_mode() || staged_) {  // parts arrive out of order: the rest is one chunk
        std::shared_ptr<Buffer> rest = read_all();
        return rest->size() == 0 ? nullptr : rest;
    }
    {
        auto locked = download_->lock();
        Download::of(locked).widen_stream_window();
    }
    auto locked = wait_for([](DownloadState &d) { return d.finished || has_chunk(d); });
    DownloadState &d = Download::of(locked);
    ChunkQueue &queue = stream_queue(d);
    if (queue.chunks.empty()) {
        d.throw_if_failed(download_->context());
        return nullptr;
    }
    Chunk chunk = std::move(queue.chunks.front());
    queue.chunks.pop_front();
    const size_t chunk_size = chunk.data->size();
    const uint64_t skip = d.read_position() - chunk.offset;  // partly read through readinto
    std::shared_ptr<Buffer> rest = chunk.data;
    if (skip > 0) {
        rest = std::make_shared<Buffer>(chunk_size - skip);
        std::memcpy(rest->data(), chunk.data->data() + skip, rest->size());
    }
    d.consumed += rest->size();
    d.open_window(chunk_size);
    return rest;
}

size_t GetStream::readinto(uint8_t *out, size_t size) {
    check_readable();
    if (empty_range_ || size == 0) return 0;
    if (whole_mode() && !staged_) {
        const uint64_t rest = remaining();
        if (size >= rest) {  // it all fits: receive it straight into the caller's buffer
            receive_rest(out, rest);
            return static_cast<size_t>(rest);
        }
        staged_.stage(read_all());
    }
    if (staged_) return staged_.take(out, size);
    size_t copied = 0;
    WaitingOnS3 waiting(download_->context().operation);
    auto locked = download_->lock();
    DownloadState &d = Download::of(locked);
    // The copies below let go of the lock, which the CRT's delivery thread wants for the next part: one reader at
    // a time keeps the stream's position its own, and the queue stays (attach() refuses while it is read).
    ChunkQueue &queue = stream_queue(d);
    queue.reading = true;
    struct EndReading {
        ChunkQueue &queue;
        ~EndReading() { queue.reading = false; }
    } end_reading{queue};
    while (copied < size) {
        d.widen_stream_window();
        wait_interruptibly(
            locked.unique_lock(), locked.changed(), [&d, &queue] { return !queue.chunks.empty() || d.finished; },
            [this] { download_->cancel(); });
        if (queue.chunks.empty()) {
            d.throw_if_failed(download_->context());
            break;
        }
        const Chunk front = queue.chunks.front();  // its bytes stay alive while copied
        const size_t used = static_cast<size_t>(d.read_position() - front.offset);
        const size_t n = std::min(size - copied, front.data->size() - used);
        if (n >= copy_without_lock) {
            locked.unique_lock().unlock();
            std::memcpy(out + copied, front.data->data() + used, n);
            locked.unique_lock().lock();
        } else {
            std::memcpy(out + copied, front.data->data() + used, n);
        }
        copied += n;
        if (queue.chunks.empty() || queue.chunks.front().data != front.data) break;  // closed meanwhile
        d.consumed += n;
        if (used + n == front.data->size()) {
            d.open_window(front.data->size());
            queue.chunks.pop_front();
        }
    }
    return copied;
}

uint64_t GetStream::tell() {
    auto locked = download_->lock();
    // A staged body counts as consumed when it was received; its unread rest is still ahead.
    return Download::of(locked).read_position() - staged_.unread();
}

void GetStream::close() {
    closed_ = true;  // its unread chunks go: a read after this would return bytes never received
    download_->cancel();
    lander_.reset();
    landed_at_once_.reset();
    let_go_of_destination();
    auto locked = download_->lock();
    if (ChunkQueue *queue = Download::of(locked).queue()) {  // kept: a reader in another thread may still hold it
        queue->chunks.clear();
        queue->recycler.reset();  // its idle buffers go once the last chunk handed out does
    }
    staged_.clear();
}

}  // namespace s3tc
