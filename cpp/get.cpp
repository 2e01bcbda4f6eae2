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

// "bytes 0-99/1234" -> 1234; 0 when absent or unknown ("*").
uint64_t total_from_content_range(const std::string &content_range) {
    const size_t slash = content_range.rfind('/');
    return slash == std::string::npos ? 0 : parse_u64(content_range.substr(slash + 1));
}

// Appends a copy of `data`, the bytes at object offset `offset`, in a buffer from `recycler` when there is one; an
// AWS error code if memory ran out, else 0.
int append_copy(std::deque<Chunk> &chunks, uint64_t offset, aws_byte_cursor data, BufferRecycler *recycler = nullptr) {
    try {
        auto copy = recycler != nullptr ? recycler->take(data.len) : std::make_shared<Buffer>(data.len);
        std::memcpy(copy->data(), data.ptr, data.len);
        chunks.push_back(Chunk{offset, std::move(copy)});
    } catch (const std::bad_alloc &) {
        return AWS_ERROR_OOM;
    }
    return 0;
}

// A received part the reader copies out of the CRT's buffer itself, lent by the pool (LandingPool::lend).
class LentPart {
public:
    LentPart(uint64_t offset, aws_byte_cursor data, aws_s3_buffer_ticket *ticket, LandingPool &pool)
        : part_(offset, data, ticket), pool_(pool) {}
    ~LentPart() {
        // In a forked child the pool's lock may have been held by a parent's thread at the fork (fork.h, rule 1).
        if (!made_in_.is_current()) return;
        part_.reset();
        pool_.give_back(part_.bytes().len);
    }
    LentPart(const LentPart &) = delete;
    LentPart &operator=(const LentPart &) = delete;

private:
    PartBuffer part_;
    LandingPool &pool_;
    MadeInProcess made_in_;
};

// Appends the part `data` (object offset `offset`) in the CRT's buffer that `ticket` holds, lent by `pool`; an
// AWS error code if memory ran out, else 0.
int append_lent(std::deque<Chunk> &chunks, uint64_t offset, aws_byte_cursor data, aws_s3_buffer_ticket *ticket,
                LandingPool &pool) {
    std::shared_ptr<LentPart> part;
    try {
        part = std::make_shared<LentPart>(offset, data, ticket, pool);
    } catch (const std::bad_alloc &) {
        pool.give_back(data.len);
        return AWS_ERROR_OOM;
    }
    try {
        chunks.push_back(Chunk{offset, std::make_shared<Buffer>(data.ptr, data.len, std::move(part))});
    } catch (const std::bad_alloc &) {
        return AWS_ERROR_OOM;  // the part, let go, went back to the pool
    }
    return 0;
}

}  // namespace

void DownloadState::open_window(uint64_t bytes) {
    if (handle != nullptr && !finished && bytes > 0) aws_s3_meta_request_increment_read_window(handle, bytes);
}

void DownloadState::widen_stream_window() {
    if (whole || finished || !chunks.empty() || stream_ahead >= max_window) return;
    const uint64_t wider = std::min(part_size, max_window - stream_ahead);
    stream_ahead += wider;
    open_window(wider);
}

void DownloadState::mark_landed(uint64_t start, uint64_t end) {
    if (end <= start) return;
    auto next = landed.upper_bound(start);
    if (next != landed.begin()) {
        auto before = std::prev(next);
        if (before->second >= start) {  // touches or overlaps the range before: one range
            start = before->first;
            end = std::max(end, before->second);
            landed.erase(before);
        }
    }
    while (next != landed.end() && next->first <= end) {
        end = std::max(end, next->second);
        next = landed.erase(next);
    }
    landed.emplace(start, end);
}

bool DownloadState::has_landed(uint64_t start, uint64_t end) const {
    if (end <= start) return true;
    auto after = landed.upper_bound(start);
    return after != landed.begin() && std::prev(after)->second >= end;
}

uint64_t DownloadState::attach(uint8_t *target, uint64_t size) {
    const uint64_t base = read_position();
    uint64_t drained = 0;
    for (const Chunk &chunk : chunks) {
        const uint64_t end = chunk.offset + chunk.data->size();
        const uint64_t start = std::max(chunk.offset, base);
        if (end > start && end - base <= size) {
            std::memcpy(target + (start - base), chunk.data->data() + (start - chunk.offset), end - start);
            mark_landed(start, end);
        }
        drained += chunk.data->size();
    }
    chunks.clear();
    destination = target;
    destination_size = size;
    whole = true;
    if (pool != nullptr && handle != nullptr && !finished) {  // the parts not reserved yet are received in place
        slices = std::make_shared<Slices>();
        pool->open(handle, LandingSite{target, base, base + size, range_start, part_size, spread_regions}, slices);
    }
    // Parts fetched ahead of the copying cost memory on top of the destination: at most a twelfth of it (with
    // the client's own needs, the peak stays within 1.1x the object), but never less than any running download
    // keeps, nor more than one part per connection.
    const uint64_t ahead = std::clamp(size / 12, least_ahead, std::max(least_ahead, max_window));
    open_window(drained + (ahead - initial_window));
    return base;
}

std::shared_ptr<Slices> DownloadState::detach() {
    destination = nullptr;
    to_copy.clear();
    misplaced.clear();
    if (slices != nullptr && handle != nullptr) pool->close(handle);
    return std::move(slices);
}

Download::Download(OperationContext context) : MetaRequest(std::move(context), std::make_unique<DownloadState>()) {}

Download::~Download() {
    // Parts still in the CRT's buffers go back to the pool while this request's reference keeps it alive.
    auto locked = lock();
    DownloadState &d = of(locked);
    d.chunks.clear();
    d.to_copy.clear();
}

bool Download::copy_next_part(Locked &locked, uint8_t *target, uint64_t base) {
    DownloadState &d = of(locked);
    if (d.to_copy.empty()) return false;
    PartBuffer part = std::move(d.to_copy.front());
    d.to_copy.pop_front();
    const uint64_t offset = part.offset();
    const uint64_t length = part.bytes().len;
    ++d.copying;
    locked.unique_lock().unlock();
    std::memcpy(target + (offset - base), part.bytes().ptr, length);
    part.reset();  // back to the pool before the lock, which the CRT's threads want
    locked.unique_lock().lock();
    --d.copying;
    d.mark_landed(offset, offset + length);
    d.open_window(length);
    locked.notify_all();
    return true;
}

void Download::place_misplaced(Locked &locked, uint8_t *target, uint64_t base) {
    DownloadState &d = of(locked);
    if (d.misplaced.empty()) return;
    std::shared_ptr<Slices> slices = d.slices;
    locked.unique_lock().unlock();
    if (slices != nullptr) slices->wait_released();  // no part is received into the destination any more
    locked.unique_lock().lock();
    if (d.destination == nullptr) return;  // let go of meanwhile
    for (const Chunk &chunk : d.misplaced) {
        std::memcpy(target + (chunk.offset - base), chunk.data->data(), chunk.data->size());
        d.mark_landed(chunk.offset, chunk.offset + chunk.data->size());
    }
    d.misplaced.clear();
    locked.notify_all();
}

int Download::on_headers(Locked &locked) {
    DownloadState &d = of(locked);
    d.info = object_info_from_headers(d.info.key, d.headers);
    d.content_length = d.info.size;  // of this response: a range, when one was asked for
    const std::string content_range = header_value(d.headers, "Content-Range");
    if (!content_range.empty()) d.info.size = total_from_content_range(content_range);
    // Servers that ignore If-Match are caught here; so are requests sent before the first ETag was known.
    if (d.version && !d.version->matches(d.info.etag)) return AWS_ERROR_S3_OBJECT_MODIFIED;
    return 0;
}

int Download::on_body(Locked &locked, aws_byte_cursor data, uint64_t offset, aws_s3_buffer_ticket *ticket) {
    DownloadState &d = of(locked);
    d.delivered += data.len;
    if (d.destination != nullptr) {
        const uint64_t base = d.read_position();
        if (offset < base || offset - base + data.len > d.destination_size) {
            return AWS_ERROR_S3_INCORRECT_CONTENT_LENGTH;
        }
        uint8_t *place = d.destination + (offset - base);
        if (data.ptr == place) {  // received in its slice: already where it belongs
            metrics().add_bytes_in_place(context().operation, data.len);
            d.mark_landed(offset, offset + data.len);
            d.open_window(data.len);
            return 0;
        }
        const bool in_another_slice = data.ptr >= d.destination && data.ptr < d.destination + d.destination_size;
        if (in_another_slice && d.handle != nullptr) d.pool->close(d.handle);  // its idea of the part order is wrong
        if (d.slices != nullptr && d.slices->was_handed(offset)) {
            // Its place went to another part's request, which may still be writing there: the part waits aside
            // until every slice is released.
            const int error = append_copy(d.misplaced, offset, data);
            if (error == 0) d.open_window(data.len);
            return error;
        }
        if (ticket != nullptr) {
            d.to_copy.emplace_back(offset, data, ticket);
        } else {
            std::memcpy(d.destination + (offset - base), data.ptr, data.len);
            d.mark_landed(offset, offset + data.len);
            d.open_window(data.len);
        }
        return 0;
    }
    // A stream's part stays in the CRT's buffer for its reader to copy out, while the pool can lend it.
    if (ticket != nullptr && d.pool != nullptr && d.pool->lend(data.len)) {
        return append_lent(d.chunks, offset, data, ticket, *d.pool);
    }
    return append_copy(d.chunks, offset, data, d.recycler.get());
}

void Download::on_finished(Locked &locked) {
    DownloadState &d = of(locked);
    // Only the first response can say so: a later part's 416 is an object that shrank under the read, an error.
    const bool empty_answer =
        !d.headers_received &&
        (d.outcome.status == 416 ||
         (d.outcome.error_code == AWS_ERROR_S3_MISSING_CONTENT_RANGE_HEADER && d.answered_empty_whole));
    if (!d.outcome.ok() && empty_answer) {
        // A range that starts past the end holds no bytes: an empty read, as with a file. Without a range of the
        // caller's, the CRT asked for the first part from byte 0, which only an empty object cannot satisfy: S3
        // says so in <ActualObjectSize>0</ActualObjectSize>, which the CRT reads; other servers answer 416 without
        // it (rclone) or 200 with no body and no Content-Range (nginx), which the CRT fails.
        d.outcome = Outcome();
        d.headers_received = true;
        d.content_length = 0;
        return;
    }
    if (d.outcome.ok() && d.delivered != d.content_length) {
        d.outcome.error_code = AWS_ERROR_S3_INCORRECT_CONTENT_LENGTH;
    }
}

void Download::on_attempt(aws_s3_request_metrics *metrics) {
    int status = 0;
    if (aws_s3_request_metrics_get_response_status_code(metrics, &status) != AWS_OP_SUCCESS || status != 200) return;
    aws_http_headers *headers = nullptr;
    aws_s3_request_metrics_get_response_headers(metrics, &headers);
    aws_byte_cursor length;
    if (headers == nullptr || aws_http_headers_has(headers, aws_byte_cursor_from_c_str("Content-Range")) ||
        aws_http_headers_get(headers, aws_byte_cursor_from_c_str("Content-Length"), &length) != AWS_OP_SUCCESS ||
        !aws_byte_cursor_eq_c_str(&length, "0")) {
        return;
    }
    auto locked = lock();
    of(locked).answered_empty_whole = true;
}

size_t StagedBody::take(uint8_t *out, size_t size) {
    const size_t n = std::min(size, unread());
    if (n > 0) std::memcpy(out, buffer_->data() + used_, n);
    used_ += n;
    return n;
}

Lander::Lander(std::shared_ptr<Download> download, uint8_t *target, uint64_t size, std::shared_ptr<void> owner)
    : download_(std::move(download)), owner_(std::move(owner)) {
    uint64_t base;
    {
        auto locked = download_->lock();
        base = Download::of(locked).attach(target, size);
    }
    thread_ = std::thread([download = download_, target, base] {
        auto locked = download->lock();
        DownloadState &d = Download::of(locked);
        for (;;) {
            locked.wait([&d] { return !d.to_copy.empty() || d.finished || d.destination == nullptr; });
            if (d.destination == nullptr) return;
            if (!Download::copy_next_part(locked, target, base)) {  // finished, and every queued part is in
                Download::place_misplaced(locked, target, base);
                return;
            }
        }
    });
}

Lander::~Lander() {
    // In a forked child the thread is the parent's (fork.h, rule 1): its handle is let go of, as std::thread
    // would end the process.
    if (!made_in_.is_current()) {
        new std::thread(std::move(thread_));
        return;
    }
    std::shared_ptr<Slices> slices;
    {
        auto locked = download_->lock();
        slices = Download::of(locked).detach();
        locked.notify_all();
    }
    thread_.join();                                  // at most the copy of one part: the lander never waits for the GIL
    if (slices != nullptr) slices->wait_released();  // then the owner may let the destination go
}

void Lander::wait_landed(uint64_t start, uint64_t end) {
    WaitingOnS3 waiting(download_->context().operation);
    auto locked = download_->lock();
    DownloadState &d = Download::of(locked);
    wait_interruptibly(
        locked.unique_lock(), locked.changed(),
        [&d, start, end] { return d.has_landed(start, end) || d.landing_over(); }, [this] { download_->cancel(); });
    if (!d.has_landed(start, end)) d.throw_if_failed(download_->context());
}

bool Lander::has_landed(uint64_t start, uint64_t end) {
    auto locked = download_->lock();
    return Download::of(locked).has_landed(start, end);
}

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
        d.least_ahead = client_->least_read_ahead();
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
    // Whole objects come in 4 MiB parts: twice the connections of 8 MiB parts within the same memory bound,
    // which is what counts where each connection is slow (S3 gives one about 90 MB/s after ~20 ms):
    // a 1 GiB read against such a server went from 0.7-0.9 to 1.1 GB/s.
    const uint64_t part_size = whole ? whole_object_part_size : client_->config().part_size;
    options.part_size = part_size;
    // No object_size_hint: in aws-c-s3 0.38 the single-part path it selects dereferences missing
    // response headers when that first request fails or is cancelled (a crash on a CRT thread).
    aws_s3_checksum_config checksums;
    client_->apply_checksums(options, checksums, false);
    {
        auto locked = download_->lock();
        DownloadState &d = Download::of(locked);
        d.part_size = part_size;
        d.spread_regions = whole ? client_->max_connections_per_request() : 1;  // one run per connection
        d.max_window = uint64_t{client_->max_connections_per_request()} * part_size;
        if (!whole) d.recycler = std::make_shared<BufferRecycler>(part_size, d.least_ahead / part_size);
    }
    target->apply(options);
    download_->start(*client_, options);
    if (!whole) {  // a stream reads ahead from its start; a whole download opens its window in attach()
        auto locked = download_->lock();
        DownloadState &d = Download::of(locked);
        d.open_window(d.least_ahead - d.initial_window);
        d.stream_ahead = d.least_ahead;
    }
}

GetStream::~GetStream() {
    if (made_in_.is_current()) download_->cancel();  // else the parent's request (fork.h, rule 1)
    lander_.reset();
}

void GetStream::land(uint8_t *target, uint64_t size, std::shared_ptr<void> owner) {
    refuse_while_landing();
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

void GetStream::refuse_while_landing() const {
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
    if (empty_range_) return 0;
    if (staged_) return staged_.unread();
    auto locked = wait_for([](DownloadState &d) { return d.headers_received || d.finished; });
    DownloadState &d = Download::of(locked);
    d.throw_if_failed(download_->context());
    return d.content_length - d.consumed;
}

void GetStream::receive_rest(uint8_t *target, uint64_t size) {
    refuse_while_landing();
    if (staged_) {  // already received: what is left of it
        staged_.take(target, static_cast<size_t>(size));
        staged_.clear();
        return;
    }
    if (empty_range_ || size == 0) return;
    uint64_t base;
    {
        auto locked = download_->lock();
        base = Download::of(locked).attach(target, size);
    }
    try {
        copy_parts_until_finished(target, base);
        auto locked = download_->lock();
        Download::place_misplaced(locked, target, base);
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

void GetStream::copy_parts_until_finished(uint8_t *target, uint64_t base) {
    WaitingOnS3 waiting(download_->context().operation);
    auto locked = download_->lock();
    DownloadState &d = Download::of(locked);
    for (;;) {
        wait_interruptibly(
            locked.unique_lock(), locked.changed(), [&d] { return !d.to_copy.empty() || d.finished; },
            [this] { download_->cancel(); });
        if (!Download::copy_next_part(locked, target, base)) return;  // finished, and every part is in
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
    refuse_while_landing();
    if (empty_range_) return nullptr;
    if (whole_mode() || staged_) {  // parts arrive out of order: the rest is one chunk
        std::shared_ptr<Buffer> rest = read_all();
        return rest->size() == 0 ? nullptr : rest;
    }
    {
        auto locked = download_->lock();
        Download::of(locked).widen_stream_window();
    }
    auto locked = wait_for([](DownloadState &d) { return !d.chunks.empty() || d.finished; });
    DownloadState &d = Download::of(locked);
    if (d.reading) throw std::logic_error("this stream is already being read by another thread");
    if (d.chunks.empty()) {
        d.throw_if_failed(download_->context());
        return nullptr;
    }
    Chunk chunk = std::move(d.chunks.front());
    d.chunks.pop_front();
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
    refuse_while_landing();
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
    // a time keeps the stream's position its own.
    if (d.reading) throw std::logic_error("this stream is already being read by another thread");
    d.reading = true;
    struct EndReading {
        DownloadState &d;
        ~EndReading() { d.reading = false; }
    } end_reading{d};
    while (copied < size) {
        d.widen_stream_window();
        wait_interruptibly(
            locked.unique_lock(), locked.changed(), [&d] { return !d.chunks.empty() || d.finished; },
            [this] { download_->cancel(); });
        if (d.chunks.empty()) {
            d.throw_if_failed(download_->context());
            break;
        }
        const Chunk front = d.chunks.front();  // its bytes stay alive while copied
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
        if (d.chunks.empty() || d.chunks.front().data != front.data) break;  // closed meanwhile
        d.consumed += n;
        if (used + n == front.data->size()) {
            d.open_window(front.data->size());
            d.chunks.pop_front();
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
    download_->cancel();
    lander_.reset();
    landed_at_once_.reset();
    let_go_of_destination();
    auto locked = download_->lock();
    Download::of(locked).chunks.clear();
    Download::of(locked).recycler.reset();  // its idle buffers go once the last chunk handed out does
    staged_.clear();
}

}  // namespace s3tc
