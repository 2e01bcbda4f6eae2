// One CRT meta request and the state its callbacks share with the Python-facing object.
#pragma once

#include "errors.h"
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
using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of header `name` (case-insensitive), or "" when absent.
std::string header_value(const Headers &headers, const std::string &name);
// What a HEAD or GET response's headers say about the object (its size: this response's body's).
ObjectInfo object_info_from_headers(const std::string &key, const Headers &headers);

// Lives until the CRT's shutdown callback, so callbacks never outlive it, whatever the
// Python side does (drop the stream, fork, exit).
class MetaRequest : public std::enable_shared_from_this<MetaRequest> {
public:
    virtual ~MetaRequest();

    // Makes the meta request on `client`. Fills in the callbacks, user data and limits of `options`.
    // Throws S3Error when the CRT refuses the options.
    void start(const Client &client, aws_s3_meta_request_options &options);

    // Asks the CRT to stop; the finish callback still comes.
    void cancel();

    // Blocks (GIL released, Ctrl-C honoured) until the finish callback ran.
    // An interrupt cancels the request and waits for the CRT to let go of it.
    void wait_finished();

    // Throws the S3Error of a failed request, after it finished.
    void throw_if_failed() const;

    OperationContext context;
    std::shared_ptr<Metrics> metrics;  // the client's; set by start()

    std::mutex mutex;
    std::condition_variable changed;
    bool headers_received = false;
    int status = 0;
    Headers headers;
    bool finished = false;
    Outcome outcome;
    aws_s3_meta_request *handle = nullptr;
    int permanent_error = 0;  // an attempt's error that retrying cannot mend; the request was cancelled for it
    // The last attempt that S3 answered with an error, as telemetry reported it. When retries run out
    // (503 SlowDown, 500 InternalError) the CRT's result has neither that response's status nor its
    // headers, so its request id would be lost.
    int failed_attempt_error = 0;
    int failed_attempt_status = 0;
    std::string failed_attempt_request_id;

protected:
    // Called on CRT threads with `mutex` held. Return an AWS error code to fail the request, 0 to go on.
    virtual int on_headers() { return 0; }
    // `ticket` (may be null) holds the CRT buffer `data` points into; acquire it to keep the bytes past the call.
    virtual int on_body(aws_byte_cursor data, uint64_t offset, aws_s3_buffer_ticket *ticket);
    virtual void on_finished() {}

private:
    static int headers_callback(aws_s3_meta_request *, const aws_http_headers *, int, void *);
    static int body_callback(aws_s3_meta_request *, const aws_byte_cursor *,
                             aws_s3_meta_request_receive_body_extra_info, void *);
    static void finish_callback(aws_s3_meta_request *, const aws_s3_meta_request_result *, void *);
    static void telemetry_callback(aws_s3_meta_request *, aws_s3_request_metrics *, void *);
    static void shutdown_callback(void *);
};

// A request whose whole response body is collected in memory (HEAD, DELETE, LIST, small PUT, COPY).
class BufferedRequest : public MetaRequest {
public:
    std::string response_body;
    std::vector<uint8_t> request_body;  // must stay alive while the CRT sends it

protected:
    int on_body(aws_byte_cursor data, uint64_t offset, aws_s3_buffer_ticket *ticket) override;
};

}  // namespace s3tc
