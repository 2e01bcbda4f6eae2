#include "request.h"

#include "client.h"
#include "wait.h"

#include <pybind11/pybind11.h>

#include <aws/common/error.h>
#include <aws/http/request_response.h>

#include <strings.h>

namespace s3tc {
namespace {

std::string to_string(aws_byte_cursor cursor) {
    return std::string(reinterpret_cast<const char *>(cursor.ptr), cursor.len);
}

Headers copy_headers(const aws_http_headers *source) {
    Headers copy;
    if (source == nullptr) return copy;
    const size_t count = aws_http_headers_count(source);
    copy.reserve(count);
    for (size_t i = 0; i < count; ++i) {
        aws_http_header header;
        if (aws_http_headers_get_index(source, i, &header) == AWS_OP_SUCCESS) {
            copy.emplace_back(to_string(header.name), to_string(header.value));
        }
    }
    return copy;
}

MetaRequest &owner(void *user_data) { return **static_cast<std::shared_ptr<MetaRequest> *>(user_data); }

}  // namespace

std::string header_value(const Headers &headers, const std::string &name) {
    for (const auto &header : headers) {
        if (strcasecmp(header.first.c_str(), name.c_str()) == 0) return header.second;
    }
    return "";
}

MetaRequest::~MetaRequest() {
    if (handle != nullptr) aws_s3_meta_request_release(handle);
}

void MetaRequest::start(const Client &client, aws_s3_meta_request_options &options) {
    options.max_active_connections_override = client.max_connections_per_request();
    // The CRT holds this reference through user_data until its shutdown callback.
    auto *keep_alive = new std::shared_ptr<MetaRequest>(shared_from_this());
    options.user_data = keep_alive;
    options.headers_callback = headers_callback;
    options.body_callback_ex = body_callback;
    options.finish_callback = finish_callback;
    options.telemetry_callback = telemetry_callback;
    options.shutdown_callback = shutdown_callback;
    aws_s3_meta_request *made = aws_s3_client_make_meta_request(client.handle(), &options);
    if (made == nullptr) {
        delete keep_alive;
        Outcome refused;
        refused.error_code = aws_last_error();
        throw make_s3_error(context, refused);
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (finished) {
        aws_s3_meta_request_release(made);  // it failed at once; nothing left to steer
    } else {
        handle = made;
    }
}

void MetaRequest::cancel() {
    std::lock_guard<std::mutex> lock(mutex);
    if (handle != nullptr && !finished) aws_s3_meta_request_cancel(handle);
}

void MetaRequest::wait_finished() {
    pybind11::gil_scoped_release no_gil;
    std::unique_lock<std::mutex> lock(mutex);
    wait_interruptibly(lock, changed, [this] { return finished; }, [this] {
        cancel();
        // The CRT finishes a cancelled request promptly; wait so nothing is left running behind us.
        std::unique_lock<std::mutex> relock(mutex);
        changed.wait(relock, [this] { return finished; });
    });
}

void MetaRequest::throw_if_failed() const {
    if (!outcome.ok()) throw make_s3_error(context, outcome);
}

int MetaRequest::on_body(aws_byte_cursor, uint64_t, aws_s3_buffer_ticket *) { return 0; }

int BufferedRequest::on_body(aws_byte_cursor data, uint64_t, aws_s3_buffer_ticket *) {
    response_body.append(reinterpret_cast<const char *>(data.ptr), data.len);
    return 0;
}

int MetaRequest::headers_callback(aws_s3_meta_request *, const aws_http_headers *headers, int status, void *user_data) {
    MetaRequest &self = owner(user_data);
    std::lock_guard<std::mutex> lock(self.mutex);
    self.headers = copy_headers(headers);
    self.status = status;
    // An error response's headers are not the object's: the failure arrives with the finish callback.
    if (status >= 300) return AWS_OP_SUCCESS;
    self.headers_received = true;
    int error = self.on_headers();
    self.changed.notify_all();
    return error == 0 ? AWS_OP_SUCCESS : aws_raise_error(error);
}

int MetaRequest::body_callback(aws_s3_meta_request *, const aws_byte_cursor *body,
                               aws_s3_meta_request_receive_body_extra_info info, void *user_data) {
    MetaRequest &self = owner(user_data);
    std::lock_guard<std::mutex> lock(self.mutex);
    int error = self.on_body(*body, info.range_start, info.ticket);
    self.changed.notify_all();
    return error == 0 ? AWS_OP_SUCCESS : aws_raise_error(error);
}

void MetaRequest::finish_callback(aws_s3_meta_request *, const aws_s3_meta_request_result *result, void *user_data) {
    MetaRequest &self = owner(user_data);
    std::lock_guard<std::mutex> lock(self.mutex);
    self.outcome.error_code = result->error_code;
    if (result->error_code == AWS_ERROR_S3_CANCELED && self.permanent_error != 0) {
        self.outcome.error_code = self.permanent_error;  // cancelled by us, for this reason
    }
    self.outcome.status = result->response_status;
    if (result->error_response_body != nullptr) {
        self.outcome.body.assign(reinterpret_cast<const char *>(result->error_response_body->buffer),
                                 result->error_response_body->len);
    }
    Headers error_headers = copy_headers(result->error_response_headers);
    self.outcome.request_id = header_value(error_headers.empty() ? self.headers : error_headers, "x-amz-request-id");
    self.finished = true;
    // Our reference would keep the CRT from ever shutting the request down (and freeing us).
    if (self.handle != nullptr) {
        aws_s3_meta_request_release(self.handle);
        self.handle = nullptr;
    }
    self.on_finished();
    self.changed.notify_all();
}

void MetaRequest::telemetry_callback(aws_s3_meta_request *meta_request, aws_s3_request_metrics *metrics,
                                     void *user_data) {
    const int error = aws_s3_request_metrics_get_error_code(metrics);
    if (!retrying_cannot_help(error)) return;  // the CRT goes on retrying, within max_attempts
    MetaRequest &self = owner(user_data);
    {
        std::lock_guard<std::mutex> lock(self.mutex);
        if (self.permanent_error != 0) return;
        self.permanent_error = error;
    }
    aws_s3_meta_request_cancel(meta_request);  // runs outside the CRT's lock: telemetry is delivered without it
}

void MetaRequest::shutdown_callback(void *user_data) { delete static_cast<std::shared_ptr<MetaRequest> *>(user_data); }

}  // namespace s3tc
