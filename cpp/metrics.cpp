#include "metrics.h"

#include <aws/http/connection_manager.h>
#include <aws/http/http.h>

#include <cmath>

namespace s3tc {
namespace {

constexpr uint32_t buckets_per_doubling = 8;
constexpr uint32_t last_bucket = 8 * 40;  // 2^40 us: 12 days, far beyond any request

void add_latency(LatencyHistogram &histogram, uint64_t nanoseconds) {
    const double microseconds = static_cast<double>(nanoseconds) / 1000.0;
    uint32_t bucket = 0;
    if (microseconds > 1.0) {
        bucket = static_cast<uint32_t>(std::log2(microseconds) * buckets_per_doubling);
        if (bucket > last_bucket) bucket = last_bucket;
    }
    ++histogram[bucket];
}

}  // namespace

void Metrics::record_attempt(const std::string &operation, const aws_s3_request_metrics *attempt) {
    int status = 0;
    const bool answered = aws_s3_request_metrics_get_response_status_code(attempt, &status) == AWS_OP_SUCCESS;
    const int error = aws_s3_request_metrics_get_error_code(attempt);
    uint64_t send_start = 0;
    uint64_t receive_start = 0;
    const bool has_first_byte =
        aws_s3_request_metrics_get_send_start_timestamp_ns(attempt, &send_start) == AWS_OP_SUCCESS &&
        aws_s3_request_metrics_get_receive_start_timestamp_ns(attempt, &receive_start) == AWS_OP_SUCCESS &&
        receive_start >= send_start;
    uint64_t duration = 0;
    aws_s3_request_metrics_get_total_duration_ns(attempt, &duration);
    aws_http_manager_metrics pool{};
    aws_s3_request_metrics_get_http_manager_metrics(attempt, &pool);
    const uint64_t open_connections = pool.available_concurrency + pool.leased_concurrency;

    std::lock_guard<std::mutex> lock(mutex_);
    OperationMetrics &counts = state_.operations[operation];
    ++counts.requests;
    if (aws_s3_request_metrics_get_retry_attempt(attempt) > 0) ++counts.retries;
    if (answered && (status == 503 || status == 429)) ++counts.throttles;
    if (answered && status >= 500) ++counts.server_errors;
    if (error == AWS_ERROR_HTTP_CHANNEL_THROUGHPUT_FAILURE) ++counts.stalls_dropped;
    if (error != 0) ++counts.failed;
    if (has_first_byte) add_latency(counts.first_byte_us, receive_start - send_start);
    add_latency(counts.duration_us, duration);
    if (open_connections > state_.peak_connections) state_.peak_connections = open_connections;
}

void Metrics::add_bytes(const std::string &operation, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    state_.operations[operation].bytes += bytes;
}

void Metrics::add_bytes_in_place(const std::string &operation, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    state_.operations[operation].bytes_in_place += bytes;
}

MetricsSnapshot Metrics::snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_;
}

}  // namespace s3tc
