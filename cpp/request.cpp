#include "request.h"

#include "client.h"
#include "text.h"
#include "wait.h"

#include <aws/common/error.h>
#include <aws/http/request_response.h>

#include <strings.h>

namespace s3tc {
namespace {

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

// The request id S3 sent with a response: x-amz-request-id, or x-amzn-requestid (moto's name, and some
// S3-compatible servers') when that is absent; "" when neither came.
std::string request_id_in(const aws_http_headers *headers) {
    if (headers == nullptr) return "";
    aws_byte_cursor value;
    for (const char *name : {"x-amz-request-id", "x-amzn-requestid"}) {  // names compare case-insensitively
        if (aws_http_headers_get(headers, aws_byte_cursor_from_c_str(name), &value) == AWS_OP_SUCCESS) {
            return to_string(value);
        }
    }
    return "";
}

MetaRequest &owner(void *user_data) { return **static_cast<std::shared_ptr<MetaRequest> *>(user_data); }

}  // namespace

std::string header_value(const Headers &headers, const std::string &name) {
    for (const auto &header : headers) {
        if (strcasecmp(header.first.c_str(), name.c_str()) == 0) return header.second;
    }
    return "";
}

ObjectInfo object_info_from_headers(const std::string &key, const Headers &headers) {
    ObjectInfo info;
    info.key = key;
    info.size = parse_u64(header_value(headers, "Content-Length"));
    info.etag = header_value(headers, "ETag");
    info.last_modified = header_value(headers, "Last-Modified");
    info.storage_class = header_value(headers, "x-amz-storage-class");
    info.restore = header_value(headers, "x-amz-restore");
    return info;
}

void RequestState::throw_if_failed(const OperationContext &context) const {
    if (finished && !outcome.ok()) throw S3Error(context, outcome);
}

MetaRequest::MetaRequest(OperationContext context, std::unique_ptr<RequestState> state)
    : context_(std::move(context)), state_(state ? std::move(state) : std::make_unique<RequestState>()) {}

MetaRequest::~MetaRequest() {
    auto locked = state_.lock();
    if (locked->handle != nullptr) aws_s3_meta_request_release(locked->handle);
    if (landing_pool_ != nullptr) landing_pool_->release();
}

void MetaRequest::start(const Client &client, aws_s3_meta_request_options &options) {
    options.max_active_connections_override = client.max_connections_per_request();
    metrics_ = client.metrics();
    landing_pool_ = &client.landing_pool();
    landing_pool_->acquire();
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
        throw S3Error(context_, refused);
    }
    auto locked = state_.lock();
    if (locked->finished) {
        aws_s3_meta_request_release(made);  // it failed at once; nothing left to steer
    } else {
        locked->handle = made;
    }
}

void MetaRequest::cancel() {
    auto locked = state_.lock();
    if (locked->handle != nullptr && !locked->finished) aws_s3_meta_request_cancel(locked->handle);
}

void MetaRequest::wait_finished() {
    WaitingOnS3 waiting(context_.operation);
    auto locked = state_.lock();
    wait_interruptibly(
        locked.unique_lock(), locked.changed(), [&locked] { return locked->finished; },
        [this] {
            cancel();
            // The CRT finishes a cancelled request promptly; wait so nothing is left running behind us.
            auto relocked = state_.lock();
            relocked.wait([&relocked] { return relocked->finished; });
        });
}

void MetaRequest::throw_if_failed() { state_.lock()->throw_if_failed(context_); }

HeldMetaRequest MetaRequest::running_handle() {
    auto locked = state_.lock();
    if (locked->handle == nullptr) return nullptr;
    return HeldMetaRequest(aws_s3_meta_request_acquire(locked->handle));
}

int MetaRequest::on_body(Locked &, aws_byte_cursor, uint64_t, aws_s3_buffer_ticket *) { return 0; }

BufferedRequest::BufferedRequest(OperationContext context, std::vector<uint8_t> request_body)
    : MetaRequest(std::move(context), std::make_unique<BufferedState>()), request_body_(std::move(request_body)) {}

std::string BufferedRequest::response_body() {
    auto locked = lock();
    return static_cast<BufferedState &>(*locked).response_body;
}

Headers BufferedRequest::headers() { return lock()->headers; }

int BufferedRequest::on_body(Locked &locked, aws_byte_cursor data, uint64_t, aws_s3_buffer_ticket *) {
    static_cast<BufferedState &>(*locked).response_body.append(reinterpret_cast<const char *>(data.ptr), data.len);
    return 0;
}

int MetaRequest::headers_callback(aws_s3_meta_request *, const aws_http_headers *headers, int status, void *user_data) {
    MetaRequest &self = owner(user_data);
    auto locked = self.state_.lock();
    locked->headers = copy_headers(headers);
    locked->status = status;
    // An error response's headers are not the object's: the failure arrives with the finish callback.
    if (status >= 300) return AWS_OP_SUCCESS;
    locked->headers_received = true;
    int error = self.on_headers(locked);
    locked.notify_all();
    return error == 0 ? AWS_OP_SUCCESS : aws_raise_error(error);
}

int MetaRequest::body_callback(aws_s3_meta_request *, const aws_byte_cursor *body,
                               aws_s3_meta_request_receive_body_extra_info info, void *user_data) {
    MetaRequest &self = owner(user_data);
    self.metrics_->add_bytes(self.context_.operation, body->len);
    auto locked = self.state_.lock();
    int error = self.on_body(locked, *body, info.range_start, info.ticket);
    locked.notify_all();
    return error == 0 ? AWS_OP_SUCCESS : aws_raise_error(error);
}

void MetaRequest::finish_callback(aws_s3_meta_request *meta_request, const aws_s3_meta_request_result *result,
                                  void *user_data) {
    MetaRequest &self = owner(user_data);
    auto locked = self.state_.lock();
    // It reserves nothing more. Under the lock, with `finished` below: no destination can be opened for it after.
    self.landing_pool_->forget(meta_request);
    RequestState &state = *locked;
    state.outcome.error_code = result->error_code;
    if (result->error_code == AWS_ERROR_S3_CANCELED && state.permanent_error != 0) {
        state.outcome.error_code = state.permanent_error;  // cancelled by us, for this reason
    }
    state.outcome.status = result->response_status;
    if (result->error_response_body != nullptr) {
        state.outcome.body.assign(reinterpret_cast<const char *>(result->error_response_body->buffer),
                                  result->error_response_body->len);
    }
    // The id of the response that failed: S3 support asks for it. The CRT hands over that response's
    // headers for an error it does not retry (404, 403...); for one it retried until the attempts ran out
    // it reports only its own error code (AWS_ERROR_S3_SLOW_DOWN...), and the last such attempt, seen
    // through telemetry, names the response.
    state.outcome.request_id = request_id_in(result->error_response_headers);
    if (state.outcome.request_id.empty() && state.failed_attempt_error != 0 &&
        state.failed_attempt_error == state.outcome.error_code) {
        state.outcome.request_id = state.failed_attempt_request_id;
        if (state.outcome.status == 0) state.outcome.status = state.failed_attempt_status;
    }
    if (state.outcome.request_id.empty()) {
        state.outcome.request_id = header_value(state.headers, "x-amz-request-id");
        if (state.outcome.request_id.empty())
            state.outcome.request_id = header_value(state.headers, "x-amzn-requestid");
    }
    state.finished = true;
    // Our reference would keep the CRT from ever shutting the request down (and freeing us).
    if (state.handle != nullptr) {
        aws_s3_meta_request_release(state.handle);
        state.handle = nullptr;
    }
    self.on_finished(locked);
    locked.notify_all();
}

void MetaRequest::telemetry_callback(aws_s3_meta_request *meta_request, aws_s3_request_metrics *metrics,
                                     void *user_data) {
    // Called once per attempt, on the meta request's event loop, all before the finish callback.
    MetaRequest &self = owner(user_data);
    self.metrics_->record_attempt(self.context_.operation, metrics);
    self.on_attempt(metrics);
    const int error = aws_s3_request_metrics_get_error_code(metrics);
    int status = 0;
    if (error != 0 && aws_s3_request_metrics_get_response_status_code(metrics, &status) == AWS_OP_SUCCESS &&
        status >= 300) {
        aws_http_headers *response_headers = nullptr;
        aws_s3_request_metrics_get_response_headers(metrics, &response_headers);  // stays null when none came
        std::string id = request_id_in(response_headers);
        auto locked = self.state_.lock();
        locked->failed_attempt_error = error;
        locked->failed_attempt_status = status;
        locked->failed_attempt_request_id = id;
        return;
    }
    if (!retrying_cannot_help(error)) return;  // the CRT goes on retrying, within max_attempts
    {
        auto locked = self.state_.lock();
        if (locked->permanent_error != 0) return;
        locked->permanent_error = error;
    }
    aws_s3_meta_request_cancel(meta_request);  // runs outside the CRT's lock: telemetry is delivered without it
}

void MetaRequest::shutdown_callback(void *user_data) { delete static_cast<std::shared_ptr<MetaRequest> *>(user_data); }

}  // namespace s3tc
