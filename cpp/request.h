// One CRT meta request and the state its callbacks share with the Python-facing object.
#pragma once

#include "errors.h"
#include "guarded.h"
#include "landing_pool.h"
#include "metrics.h"
#include "object_info.h"

#include <aws/s3/s3_client.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace s3tc {

class Client;

// A reference of ours to a CRT meta request: the request cannot be freed while it is held, even if it finishes.
struct MetaRequestRelease {
    void operator()(aws_s3_meta_request *handle) const { aws_s3_meta_request_release(handle); }
};
using HeldMetaRequest = std::unique_ptr<aws_s3_meta_request, MetaRequestRelease>;

using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of header `name` (case-insensitive), or "" when absent.
std::string header_value(const Headers &headers, const std::string &name);
// What a HEAD or GET response's headers say about the object (its size: this response's body's).
ObjectInfo object_info_from_headers(const std::string &key, const Headers &headers);

// What a meta request's CRT callbacks and the threads waiting on it share. Reachable only under its lock
// (Guarded); kinds of request extend it with their own state (DownloadState, BufferedState).
struct RequestState {
    virtual ~RequestState() = default;

    bool headers_received = false;
    int status = 0;
    Headers headers;
    bool finished = false;
    Outcome outcome;
    aws_s3_meta_request *handle = nullptr;  // while the request runs; released when it finished
    int permanent_error = 0;  // an attempt's error that retrying cannot mend; the request was cancelled for it
    // The last attempt that S3 answered with an error, as telemetry reported it. When retries run out
    // (503 SlowDown, 500 InternalError) the CRT's result has neither that response's status nor its
    // headers, so its request id would be lost.
    int failed_attempt_error = 0;
    int failed_attempt_status = 0;
    std::string failed_attempt_request_id;

    // Throws the S3Error of a request that finished and failed.
    void throw_if_failed(const OperationContext &context) const;
};

// Lives until the CRT's shutdown callback, so callbacks never outlive it, whatever the
// Python side does (drop the stream, fork, exit).
class MetaRequest : public std::enable_shared_from_this<MetaRequest> {
public:
    using Locked = Guarded<RequestState>::Locked;

    explicit MetaRequest(OperationContext context, std::unique_ptr<RequestState> state = nullptr);
    virtual ~MetaRequest();
    MetaRequest(const MetaRequest &) = delete;
    MetaRequest &operator=(const MetaRequest &) = delete;

    // Makes the meta request on `client`. Fills in the callbacks, user data and limits of `options`.
    // Throws S3Error when the CRT refuses the options.
    void start(const Client &client, aws_s3_meta_request_options &options);

    // Asks the CRT to stop; the finish callback still comes.
    void cancel();

    // Blocks (GIL released, Ctrl-C honoured) until the finish callback ran.
    // An interrupt cancels the request and waits for the CRT to let go of it.
    void wait_finished();

    // Throws the S3Error of a failed request, after it finished.
    void throw_if_failed();

    // The CRT's handle while the request runs, with a reference of the caller's (the finish callback lets go of
    // ours, on a CRT thread, at any moment); null once it finished.
    HeldMetaRequest running_handle();

    const OperationContext &context() const { return context_; }
    Locked lock() { return state_.lock(); }

protected:
    // The client's counters (set by start()).
    Metrics &metrics() const { return *metrics_; }
    // Called on CRT threads with the lock held. Return an AWS error code to fail the request, 0 to go on.
    virtual int on_headers(Locked &) { return 0; }
    // `ticket` (may be null) holds the CRT buffer `data` points into; acquire it to keep the bytes past the call.
    virtual int on_body(Locked &locked, aws_byte_cursor data, uint64_t offset, aws_s3_buffer_ticket *ticket);
    virtual void on_finished(Locked &) {}
    // Called on a CRT thread, without the lock, for each attempt as telemetry reports it (before the finish).
    virtual void on_attempt(aws_s3_request_metrics *) {}

private:
    static int headers_callback(aws_s3_meta_request *, const aws_http_headers *, int, void *);
    static int body_callback(aws_s3_meta_request *, const aws_byte_cursor *,
                             aws_s3_meta_request_receive_body_extra_info, void *);
    static void finish_callback(aws_s3_meta_request *, const aws_s3_meta_request_result *, void *);
    static void telemetry_callback(aws_s3_meta_request *, aws_s3_request_metrics *, void *);
    static void shutdown_callback(void *);

    const OperationContext context_;
    std::shared_ptr<Metrics> metrics_;     // the client's; set by start(), before any callback
    LandingPool *landing_pool_ = nullptr;  // the client's, one reference ours; set by start(), before any callback
    Guarded<RequestState> state_;
};

struct BufferedState : RequestState {
    std::string response_body;
};

// A request whose whole response body is collected in memory (HEAD, DELETE, LIST, small PUT, COPY).
class BufferedRequest : public MetaRequest {
public:
    // `request_body` is what the request sends; it stays here while the CRT reads it.
    BufferedRequest(OperationContext context, std::vector<uint8_t> request_body);

    // After the request finished: its response.
    std::string response_body();
    Headers headers();
    const std::vector<uint8_t> &request_body() const { return request_body_; }

protected:
    int on_body(Locked &locked, aws_byte_cursor data, uint64_t offset, aws_s3_buffer_ticket *ticket) override;

private:
    const std::vector<uint8_t> request_body_;
};

}  // namespace s3tc
