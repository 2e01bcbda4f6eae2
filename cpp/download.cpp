#include "download.h"

#include "text.h"

#include <aws/common/error.h>
#include <aws/http/request_response.h>
#include <aws/s3/s3.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace s3tc {
namespace {

// "bytes 0-99/1234" -> 1234; 0 when absent or unknown ("*").
uint64_t total_from_content_range(const std::string &content_range) {
    const size_t slash = content_range.rfind('/');
    return slash == std::string::npos ? 0 : parse_u64(content_range.substr(slash + 1));
}

}  // namespace

void DownloadState::open_window(uint64_t bytes) {
    if (handle != nullptr && !finished && bytes > 0) aws_s3_meta_request_increment_read_window(handle, bytes);
}

void DownloadState::widen_stream_window() {
    ChunkQueue *q = queue();
    if (whole || finished || q == nullptr || !q->chunks.empty() || stream_ahead >= max_window) return;
    const uint64_t wider = std::min(part_size, max_window - stream_ahead);
    stream_ahead += wider;
    open_window(wider);
}

uint64_t DownloadState::attach(uint8_t *target, uint64_t size) {
    ChunkQueue *q = queue();
    if (q == nullptr) throw std::logic_error("the body of this stream is already being received");
    if (q->reading) throw std::logic_error("this stream is already being read by another thread");
    Landing landing;
    landing.destination = target;
    landing.size = size;
    landing.base = read_position();
    uint64_t drained = 0;
    for (const Chunk &chunk : q->chunks) {
        const uint64_t end = chunk.offset + chunk.data->size();
        const uint64_t start = std::max(chunk.offset, landing.base);
        if (end > start && end - landing.base <= size) {
            std::memcpy(landing.place_of(start), chunk.data->data() + (start - chunk.offset), end - start);
            landing.mark_landed(start, end);
        }
        drained += chunk.data->size();
    }
    const uint64_t base = landing.base;
    body = std::move(landing);  // the queued chunks go, lent parts back to the budget
    whole = true;
    if (pool != nullptr && handle != nullptr && !finished) {  // the parts not reserved yet are received in place
        Landing &now = std::get<Landing>(body);
        now.slices = std::make_shared<Slices>();
        pool->open(handle, LandingSite{target, base, base + size, range_start, part_size, regions}, now.slices);
    }
    // Parts fetched ahead of the copying cost memory on top of the destination: at most a twelfth of it (with
    // the client's own needs, the peak stays within 1.1x the object), but never less than any running download
    // keeps, nor more than one part per connection.
    const uint64_t ahead = std::clamp(size / 12, least_read_ahead, std::max(least_read_ahead, max_window));
    open_window(drained + (ahead - initial_window));
    return base;
}

std::shared_ptr<Slices> DownloadState::detach() {
    Landing *l = landing();
    if (l == nullptr) return nullptr;
    std::shared_ptr<Slices> slices = std::move(l->slices);
    if (slices != nullptr && handle != nullptr) pool->close(handle);
    body.emplace<ChunkQueue>();  // parts still waiting to be copied go back to the CRT's pool
    return slices;
}

Download::Download(OperationContext context) : MetaRequest(std::move(context), std::make_unique<DownloadState>()) {}

Download::~Download() {
    // Parts still in the CRT's buffers go back to the pool while this request's reference keeps it alive.
    auto locked = lock();
    of(locked).body.emplace<ChunkQueue>();
}

bool Download::copy_next_part(Locked &locked) {
    DownloadState &d = of(locked);
    Landing *landing = d.landing();
    if (landing == nullptr || landing->to_copy.empty()) return false;
    PartBuffer part = std::move(landing->to_copy.front());
    landing->to_copy.pop_front();
    const uint64_t offset = part.offset();
    const uint64_t length = part.bytes().len;
    uint8_t *place = landing->place_of(offset);  // the caller keeps the destination until we return
    ++landing->copying;
    locked.unique_lock().unlock();
    std::memcpy(place, part.bytes().ptr, length);
    part.reset();  // back to the pool before the lock, which the CRT's threads want
    locked.unique_lock().lock();
    d.open_window(length);
    locked.notify_all();
    landing = d.landing();
    if (landing == nullptr) return false;  // let go of meanwhile (detach)
    --landing->copying;
    landing->mark_landed(offset, offset + length);
    return true;
}

void Download::place_misplaced(Locked &locked) {
    DownloadState &d = of(locked);
    Landing *landing = d.landing();
    if (landing == nullptr || landing->misplaced.empty()) return;
    std::shared_ptr<Slices> slices = landing->slices;
    locked.unique_lock().unlock();
    if (slices != nullptr) slices->wait_released();  // no part is received into the destination any more
    locked.unique_lock().lock();
    landing = d.landing();
    if (landing == nullptr) return;  // let go of meanwhile
    for (const Chunk &chunk : landing->misplaced) {
        std::memcpy(landing->place_of(chunk.offset), chunk.data->data(), chunk.data->size());
        landing->mark_landed(chunk.offset, chunk.offset + chunk.data->size());
    }
    landing->misplaced.clear();
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
    if (Landing *landing = d.landing()) return land_part(d, *landing, data, offset, ticket);
    // A stream's part stays in the CRT's buffer for its reader to copy out, while the budget allows.
    return d.queue()->append(offset, data, ticket, d.pool != nullptr ? &d.pool->lending() : nullptr);
}

int Download::land_part(DownloadState &d, Landing &landing, aws_byte_cursor data, uint64_t offset,
                        aws_s3_buffer_ticket *ticket) {
    if (!landing.holds(offset, data.len)) return AWS_ERROR_S3_INCORRECT_CONTENT_LENGTH;
    uint8_t *place = landing.place_of(offset);
    if (data.ptr == place) {  // received in its slice: already where it belongs
        metrics().add_bytes_in_place(context().operation, data.len);
        landing.mark_landed(offset, offset + data.len);
        d.open_window(data.len);
        return 0;
    }
    const bool in_another_slice = data.ptr >= landing.destination && data.ptr < landing.destination + landing.size;
    if (in_another_slice && d.handle != nullptr) d.pool->close(d.handle);  // its idea of the part order is wrong
    if (landing.slices != nullptr && landing.slices->was_handed(offset)) {
        // Its place went to another part's request, which may still be writing there: the part waits aside
        // until every slice is released.
        const int error = append_copy(landing.misplaced, offset, data);
        if (error == 0) d.open_window(data.len);
        return error;
    }
    if (ticket != nullptr) {
        landing.to_copy.emplace_back(offset, data, ticket);
    } else {
        std::memcpy(place, data.ptr, data.len);
        landing.mark_landed(offset, offset + data.len);
        d.open_window(data.len);
    }
    return 0;
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

}  // namespace s3tc
