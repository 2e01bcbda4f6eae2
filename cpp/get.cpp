#include "get.h"

#include "runtime.h"
#include "wait.h"

#include <aws/common/error.h>
#include <aws/s3/s3.h>

#include <pybind11/pybind11.h>

#include <cstring>
#include <new>
#include <stdexcept>

namespace py = pybind11;

namespace s3tc {
namespace {

// The CRT caps its own window arithmetic; this is "no limit" without risking overflow.
constexpr uint64_t unlimited_window = 1ull << 62;

uint64_t parse_u64(const std::string &text) {
    try {
        return text.empty() ? 0 : std::stoull(text);
    } catch (const std::exception &) {
        return 0;
    }
}

// "bytes 0-99/1234" -> 1234; 0 when absent or unknown ("*").
uint64_t total_from_content_range(const std::string &content_range) {
    const size_t slash = content_range.rfind('/');
    return slash == std::string::npos ? 0 : parse_u64(content_range.substr(slash + 1));
}

// With the download finished in whole mode: what the caller has not read yet, without a copy
// when that is all of it. Marks it read.
std::shared_ptr<Buffer> take_whole_rest(Download &d) {
    if (!d.whole_buffer) return std::make_shared<Buffer>(0);
    const uint64_t offset = d.consumed - (d.whole_base - d.range_start);
    std::shared_ptr<Buffer> rest;
    if (offset == 0) {
        rest = std::move(d.whole_buffer);
    } else {
        rest = std::make_shared<Buffer>(static_cast<size_t>(d.whole_buffer->size() - offset));
        std::memcpy(rest->data(), d.whole_buffer->data() + offset, rest->size());
    }
    d.consumed += rest->size();
    d.whole_buffer = std::make_shared<Buffer>(0);
    d.whole_base = d.range_start + d.consumed;
    return rest;
}

}  // namespace

void Download::open_window(uint64_t bytes) {
    if (handle != nullptr && !finished && bytes > 0) aws_s3_meta_request_increment_read_window(handle, bytes);
}

void Download::become_whole() {
    const uint64_t remaining = content_length - consumed;
    whole_buffer = std::make_shared<Buffer>(static_cast<size_t>(remaining));
    whole_base = range_start + consumed;
    size_t at = 0;
    for (auto &chunk : chunks) {
        const size_t n = chunk->size() - front_used;
        std::memcpy(whole_buffer->data() + at, chunk->data() + front_used, n);
        at += n;
        front_used = 0;
    }
    chunks.clear();
    whole = true;
    open_window(unlimited_window);
}

int Download::on_headers() {
    content_length = parse_u64(header_value(headers, "Content-Length"));
    const std::string content_range = header_value(headers, "Content-Range");
    info.size = content_range.empty() ? content_length : total_from_content_range(content_range);
    info.etag = header_value(headers, "ETag");
    info.last_modified = header_value(headers, "Last-Modified");
    info.storage_class = header_value(headers, "x-amz-storage-class");
    if (whole) {
        try {
            whole_buffer = std::make_shared<Buffer>(static_cast<size_t>(content_length));
        } catch (const std::bad_alloc &) {
            return AWS_ERROR_OOM;
        }
        whole_base = range_start;
    }
    return 0;
}

int Download::on_body(aws_byte_cursor data, uint64_t offset) {
    delivered += data.len;
    if (whole) {
        if (!whole_buffer) return AWS_ERROR_S3_CANCELED;  // closed by the caller
        if (offset < whole_base || offset - whole_base + data.len > whole_buffer->size()) {
            return AWS_ERROR_S3_INCORRECT_CONTENT_LENGTH;
        }
        std::memcpy(whole_buffer->data() + (offset - whole_base), data.ptr, data.len);
        return 0;
    }
    try {
        auto chunk = std::make_shared<Buffer>(data.len);
        std::memcpy(chunk->data(), data.ptr, data.len);
        chunks.push_back(std::move(chunk));
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
        if (whole) whole_buffer = std::make_shared<Buffer>(0);
        return;
    }
    if (outcome.ok() && delivered != content_length) {
        outcome.error_code = AWS_ERROR_S3_INCORRECT_CONTENT_LENGTH;
    }
}

GetStream::GetStream(std::shared_ptr<Client> client, const std::string &bucket, const std::string &key,
                     std::optional<uint64_t> start, std::optional<uint64_t> end, bool whole)
    : client_(std::move(client)), download_(std::make_shared<Download>()), pid_(current_pid()) {
    if (start && end && *end < *start) {
        throw std::invalid_argument("range end " + std::to_string(*end) + " is before its start " +
                                    std::to_string(*start));
    }
    download_->context = client_->context("GetObject", bucket, key);
    download_->info.key = key;
    download_->whole = whole;
    download_->range_start = start.value_or(0);
    download_->ranged = start.has_value() || end.has_value();
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
    aws_s3_meta_request_options options = {};
    options.type = AWS_S3_META_REQUEST_TYPE_GET_OBJECT;
    // In whole mode each part lands at its own offset, so it need not wait for the part before it.
    options.out_of_order_delivery = whole ? AWS_TRIBOOL_TRUE : AWS_TRIBOOL_UNSET;
    // No object_size_hint: in aws-c-s3 0.38 the single-part path it selects dereferences missing
    // response headers when that first request fails or is cancelled (a crash on a CRT thread).
    aws_s3_checksum_config checksums;
    client_->apply_checksums(options, checksums, false);
    target->apply(options);
    download_->start(client_->handle(), options);
    if (whole) {
        std::lock_guard<std::mutex> lock(download_->mutex);
        download_->open_window(unlimited_window);
    }
}

GetStream::~GetStream() {
    // In a forked child the request belongs to the parent's CRT threads, which do not exist here.
    if (created_in_this_process(pid_)) download_->cancel();
}

void GetStream::wait_for(const std::function<bool()> &ready) {
    py::gil_scoped_release no_gil;
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

std::shared_ptr<Buffer> GetStream::read_all() {
    if (empty_range_) return std::make_shared<Buffer>(0);
    Download &d = *download_;
    wait_for([&d] { return d.headers_received || d.finished; });
    {
        std::lock_guard<std::mutex> lock(d.mutex);
        throw_if_failed_locked();
        if (!d.whole) d.become_whole();
    }
    wait_for([&d] { return d.finished; });
    std::lock_guard<std::mutex> lock(d.mutex);
    throw_if_failed_locked();
    return take_whole_rest(d);
}

std::shared_ptr<Buffer> GetStream::next_chunk() {
    if (empty_range_) return nullptr;
    Download &d = *download_;
    wait_for([&d] { return !d.chunks.empty() || d.finished; });
    std::lock_guard<std::mutex> lock(d.mutex);
    if (d.whole) {  // the body is one buffer: hand out what is left of it once
        throw_if_failed_locked();
        std::shared_ptr<Buffer> rest = take_whole_rest(d);
        return rest->size() == 0 ? nullptr : rest;
    }
    if (d.chunks.empty()) {
        throw_if_failed_locked();
        return nullptr;
    }
    std::shared_ptr<Buffer> chunk = std::move(d.chunks.front());
    d.chunks.pop_front();
    const size_t chunk_size = chunk->size();
    if (d.front_used > 0) {  // partly read through readinto: hand out the rest only
        auto rest = std::make_shared<Buffer>(chunk_size - d.front_used);
        std::memcpy(rest->data(), chunk->data() + d.front_used, rest->size());
        d.front_used = 0;
        chunk = std::move(rest);
    }
    d.consumed += chunk->size();
    d.open_window(chunk_size);
    return chunk;
}

size_t GetStream::readinto(uint8_t *out, size_t size) {
    if (empty_range_ || size == 0) return 0;
    Download &d = *download_;
    size_t copied = 0;
    py::gil_scoped_release no_gil;
    std::unique_lock<std::mutex> lock(d.mutex);
    while (copied < size) {
        wait_interruptibly(lock, d.changed, [&d] { return !d.chunks.empty() || d.finished; },
                           [&d] { d.cancel(); });
        if (d.whole) {  // finished: copy from the whole buffer
            throw_if_failed_locked();
            const uint64_t offset = d.consumed - (d.whole_base - d.range_start);
            const size_t available = d.whole_buffer ? static_cast<size_t>(d.whole_buffer->size() - offset) : 0;
            const size_t n = std::min(size - copied, available);
            if (n > 0) std::memcpy(out + copied, d.whole_buffer->data() + offset, n);
            d.consumed += n;
            return copied + n;
        }
        if (d.chunks.empty()) {
            throw_if_failed_locked();
            break;
        }
        Buffer &front = *d.chunks.front();
        const size_t n = std::min(size - copied, front.size() - d.front_used);
        std::memcpy(out + copied, front.data() + d.front_used, n);
        copied += n;
        d.front_used += n;
        d.consumed += n;
        if (d.front_used == front.size()) {
            d.open_window(front.size());
            d.chunks.pop_front();
            d.front_used = 0;
        }
    }
    return copied;
}

void GetStream::close() {
    download_->cancel();
    std::lock_guard<std::mutex> lock(download_->mutex);
    download_->chunks.clear();
    download_->whole_buffer.reset();
}

}  // namespace s3tc
