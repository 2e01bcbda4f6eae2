#include "get.h"

#include "gil.h"
#include "profiler_span.h"
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

// "bytes 0-99/1234" -> 1234; 0 when absent or unknown ("*").
uint64_t total_from_content_range(const std::string &content_range) {
    const size_t slash = content_range.rfind('/');
    return slash == std::string::npos ? 0 : parse_u64(content_range.substr(slash + 1));
}

}  // namespace

void Download::open_window(uint64_t bytes) {
    if (handle != nullptr && !finished && bytes > 0) aws_s3_meta_request_increment_read_window(handle, bytes);
}

void Download::mark_landed(uint64_t start, uint64_t end) {
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

bool Download::has_landed(uint64_t start, uint64_t end) const {
    if (end <= start) return true;
    auto after = landed.upper_bound(start);
    return after != landed.begin() && std::prev(after)->second >= end;
}

bool Download::copy_next_part(std::unique_lock<std::mutex> &lock, uint8_t *target, uint64_t base) {
    if (to_copy.empty()) return false;
    PartBuffer part = std::move(to_copy.front());
    to_copy.pop_front();
    const uint64_t offset = part.offset();
    const uint64_t length = part.bytes().len;
    ++copying;
    lock.unlock();
    std::memcpy(target + (offset - base), part.bytes().ptr, length);
    part.reset();  // back to the pool before the lock, which the CRT's threads want
    lock.lock();
    --copying;
    mark_landed(offset, offset + length);
    open_window(length);
    changed.notify_all();
    return true;
}

void Download::attach(uint8_t *target, uint64_t size) {
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
    // Parts fetched ahead of the copying cost memory on top of the destination: at most a twelfth of it (with
    // the client's own needs, the peak stays within 1.1x the object), but never less than the window this
    // download started with, nor more than one part per connection.
    const uint64_t ahead = std::clamp(size / 12, initial_window, std::max(initial_window, max_window));
    open_window(drained + (ahead - initial_window));
}

int Download::on_headers() {
    info = object_info_from_headers(info.key, headers);
    content_length = info.size;  // of this response: a range, when one was asked for
    const std::string content_range = header_value(headers, "Content-Range");
    if (!content_range.empty()) info.size = total_from_content_range(content_range);
    // Servers that ignore If-Match are caught here; so are requests sent before the first ETag was known.
    if (version && !version->matches(info.etag)) return AWS_ERROR_S3_OBJECT_MODIFIED;
    return 0;
}

int Download::on_body(aws_byte_cursor data, uint64_t offset, aws_s3_buffer_ticket *ticket) {
    delivered += data.len;
    if (destination != nullptr) {
        const uint64_t base = read_position();
        if (offset < base || offset - base + data.len > destination_size) {
            return AWS_ERROR_S3_INCORRECT_CONTENT_LENGTH;
        }
        if (ticket != nullptr) {
            to_copy.emplace_back(offset, data, ticket);
        } else {
            std::memcpy(destination + (offset - base), data.ptr, data.len);
            mark_landed(offset, offset + data.len);
            open_window(data.len);
        }
        return 0;
    }
    try {
        auto chunk = std::make_shared<Buffer>(data.len);
        std::memcpy(chunk->data(), data.ptr, data.len);
        chunks.push_back(Chunk{offset, std::move(chunk)});
    } catch (const std::bad_alloc &) {
        return AWS_ERROR_OOM;
    }
    return 0;
}

void Download::on_finished() {
    if (!outcome.ok() && outcome.status == 416 && ranged) {
        // A range that starts past the end holds no bytes: an empty read, as with a file.
        outcome = Outcome();
        headers_received = true;
        content_length = 0;
        return;
    }
    if (outcome.ok() && delivered != content_length) {
        outcome.error_code = AWS_ERROR_S3_INCORRECT_CONTENT_LENGTH;
    }
}

GetStream::GetStream(std::shared_ptr<Client> client, const std::string &bucket, const std::string &key,
                     std::optional<uint64_t> start, std::optional<uint64_t> end, bool whole,
                     std::shared_ptr<ObjectVersion> version)
    : client_(std::move(client)), bucket_(bucket), download_(std::make_shared<Download>()), pid_(current_pid()) {
    if (start && end && *end < *start) {
        throw std::invalid_argument("range end " + std::to_string(*end) + " is before its start " +
                                    std::to_string(*start));
    }
    download_->context = client_->context("GetObject", bucket, key);
    download_->info.key = key;
    download_->whole = whole;
    download_->range_start = start.value_or(0);
    download_->ranged = start.has_value() || end.has_value();
    download_->version = std::move(version);
    download_->initial_window = client_->initial_read_window();
    if (end && *end == download_->range_start) {
        empty_range_ = true;  // nothing to fetch
        return;
    }

    auto target = client_->target("GET", bucket, key);
    if (download_->ranged) {
        std::string range = "bytes=" + std::to_string(download_->range_start) + "-";
        if (end) range += std::to_string(*end - 1);
        aws_http_headers_set(aws_http_message_get_headers(target->message()), aws_byte_cursor_from_c_str("Range"),
                             aws_byte_cursor_from_array(range.data(), range.size()));
    }
    const std::string pinned_etag = download_->version ? download_->version->etag() : "";
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
    download_->max_window = uint64_t{client_->max_connections_per_request()} * part_size;
    target->apply(options);
    download_->start(*client_, options);
}

GetStream::~GetStream() {
    // In a forked child the request belongs to the parent's CRT threads, and the lander to the parent too:
    // neither exists here. The lander's handle is let go of (std::thread would end the process).
    if (!created_in_this_process(pid_)) {
        if (lander_.joinable()) new std::thread(std::move(lander_));
        return;
    }
    download_->cancel();
    stop_landing();
}

void GetStream::land(uint8_t *target, uint64_t size, std::shared_ptr<void> owner) {
    refuse_while_landing();
    if (staged_) throw std::logic_error("the body of this stream is already being received");
    if (size <= whole_object_part_size) {  // nothing to overlap: one part
        receive_rest(target, size);
        landing_owner_ = std::move(owner);
        return;
    }
    Download &d = *download_;
    uint64_t base;
    {
        std::lock_guard<std::mutex> lock(d.mutex);
        base = d.read_position();
        d.attach(target, size);
    }
    landing_owner_ = std::move(owner);
    lander_ = std::thread([download = download_, target, base] {
        Download &d = *download;
        std::unique_lock<std::mutex> lock(d.mutex);
        for (;;) {
            d.changed.wait(lock, [&d] { return !d.to_copy.empty() || d.finished || d.destination == nullptr; });
            if (d.destination == nullptr || !d.copy_next_part(lock, target, base)) return;
        }
    });
}

void GetStream::wait_landed(uint64_t start, uint64_t end) {
    if (empty_range_) return;
    Download &d = *download_;
    if (!lander_.joinable()) {  // received before land() returned
        std::lock_guard<std::mutex> lock(d.mutex);
        throw_if_failed_locked();
        return;
    }
    wait_for([&d, start, end] { return d.has_landed(start, end) || d.landing_over(); });
    std::lock_guard<std::mutex> lock(d.mutex);
    if (!d.has_landed(start, end)) throw_if_failed_locked();
}

bool GetStream::has_landed(uint64_t start, uint64_t end) {
    if (empty_range_ || !lander_.joinable()) return true;  // received before land() returned
    std::lock_guard<std::mutex> lock(download_->mutex);
    return download_->has_landed(start, end);
}

void GetStream::refuse_while_landing() const {
    if (lander_.joinable()) throw std::logic_error("the body of this stream is already being received");
}

void GetStream::stop_landing() {
    if (!lander_.joinable()) return;
    {
        std::lock_guard<std::mutex> lock(download_->mutex);
        download_->detach();
        download_->changed.notify_all();
    }
    lander_.join();  // at most the copy of one part: the lander never waits for the GIL
}

void GetStream::wait_for(const std::function<bool()> &ready) {
    ProfilerSpan span(download_->context.operation);
    GilReleased no_gil;
    std::unique_lock<std::mutex> lock(download_->mutex);
    wait_interruptibly(lock, download_->changed, ready, [this] { download_->cancel(); });
}

void GetStream::throw_if_failed_locked() {
    if (download_->finished && !download_->outcome.ok()) download_->throw_if_failed();
}

ObjectInfo GetStream::info() {
    if (empty_range_) return download_->info;
    Download &d = *download_;
    wait_for([&d] { return d.headers_received || d.finished; });
    std::lock_guard<std::mutex> lock(d.mutex);
    throw_if_failed_locked();
    return d.info;
}

uint64_t GetStream::remaining() {
    if (empty_range_) return 0;
    if (staged_) return staged_->size() - staged_used_;
    Download &d = *download_;
    wait_for([&d] { return d.headers_received || d.finished; });
    std::lock_guard<std::mutex> lock(d.mutex);
    throw_if_failed_locked();
    return d.content_length - d.consumed;
}

void GetStream::receive_rest(uint8_t *target, uint64_t size) {
    refuse_while_landing();
    if (staged_) {  // already received: what is left of it
        std::memcpy(target, staged_->data() + staged_used_, static_cast<size_t>(size));
        staged_.reset();
        return;
    }
    if (empty_range_ || size == 0) return;
    Download &d = *download_;
    {
        std::lock_guard<std::mutex> lock(d.mutex);
        d.attach(target, size);
    }
    try {
        copy_parts_until_finished(target);
    } catch (...) {
        std::lock_guard<std::mutex> lock(d.mutex);
        d.detach();  // the caller's memory may go away as soon as we return
        throw;
    }
    std::lock_guard<std::mutex> lock(d.mutex);
    d.detach();
    throw_if_failed_locked();
    d.consumed += size;
}

void GetStream::copy_parts_until_finished(uint8_t *target) {
    Download &d = *download_;
    ProfilerSpan span(d.context.operation);
    GilReleased no_gil;
    std::unique_lock<std::mutex> lock(d.mutex);
    const uint64_t base = d.read_position();
    for (;;) {
        wait_interruptibly(lock, d.changed, [&d] { return !d.to_copy.empty() || d.finished; }, [&d] { d.cancel(); });
        if (!d.copy_next_part(lock, target, base)) return;  // finished, and every part is in
    }
}

std::shared_ptr<Buffer> GetStream::read_all() {
    const uint64_t size = remaining();
    auto body = std::make_shared<Buffer>(static_cast<size_t>(size));
    receive_rest(body->data(), size);
    return body;
}

std::shared_ptr<Buffer> GetStream::next_chunk() {
    refuse_while_landing();
    if (empty_range_) return nullptr;
    Download &d = *download_;
    if (d.whole || staged_) {  // parts arrive out of order: the rest is one chunk
        std::shared_ptr<Buffer> rest = read_all();
        return rest->size() == 0 ? nullptr : rest;
    }
    wait_for([&d] { return !d.chunks.empty() || d.finished; });
    std::lock_guard<std::mutex> lock(d.mutex);
    if (d.chunks.empty()) {
        throw_if_failed_locked();
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
    Download &d = *download_;
    if (d.whole && !staged_) {
        const uint64_t rest = remaining();
        if (size >= rest) {  // it all fits: receive it straight into the caller's buffer
            receive_rest(out, rest);
            return static_cast<size_t>(rest);
        }
        staged_ = read_all();
        staged_used_ = 0;
    }
    if (staged_) {
        const size_t n = std::min(size, staged_->size() - staged_used_);
        std::memcpy(out, staged_->data() + staged_used_, n);
        staged_used_ += n;
        return n;
    }
    size_t copied = 0;
    ProfilerSpan span(d.context.operation);
    GilReleased no_gil;
    std::unique_lock<std::mutex> lock(d.mutex);
    while (copied < size) {
        wait_interruptibly(lock, d.changed, [&d] { return !d.chunks.empty() || d.finished; }, [&d] { d.cancel(); });
        if (d.chunks.empty()) {
            throw_if_failed_locked();
            break;
        }
        Chunk &front = d.chunks.front();
        const size_t used = static_cast<size_t>(d.read_position() - front.offset);
        const size_t n = std::min(size - copied, front.data->size() - used);
        std::memcpy(out + copied, front.data->data() + used, n);
        copied += n;
        d.consumed += n;
        if (used + n == front.data->size()) {
            d.open_window(front.data->size());
            d.chunks.pop_front();
        }
    }
    return copied;
}

uint64_t GetStream::tell() {
    std::lock_guard<std::mutex> lock(download_->mutex);
    // A staged body counts as consumed when it was received; its unread rest is still ahead.
    const uint64_t staged_unread = staged_ ? staged_->size() - staged_used_ : 0;
    return download_->read_position() - staged_unread;
}

void GetStream::close() {
    download_->cancel();
    stop_landing();
    landing_owner_.reset();
    std::lock_guard<std::mutex> lock(download_->mutex);
    download_->detach();
    download_->chunks.clear();
    staged_.reset();
}

}  // namespace s3tc
