// What one client's requests did, per S3 operation: counted on the CRT's threads as attempts finish, read
// from Python at any time (S3Client.metrics()). Python turns the histograms into percentiles and merges
// the snapshots of several processes (s3torchconnector/_metrics.py).
#pragma once

#include <aws/s3/s3_client.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace s3tc {

// Latencies in log buckets, eight per doubling: bucket i holds [2^(i/8), 2^((i+1)/8)) microseconds.
using LatencyHistogram = std::map<uint32_t, uint64_t>;  // bucket -> count; only the buckets used

struct OperationMetrics {
    uint64_t requests = 0;           // HTTP requests sent, each part and each retry counted
    uint64_t bytes = 0;              // payload moved: response bodies received, object data sent
    uint64_t bytes_in_place = 0;     // of the bytes received, those the CRT received straight into the caller's memory
    uint64_t retries = 0;            // requests that were a second or later attempt
    uint64_t throttles = 0;          // answered 503 SlowDown or 429
    uint64_t server_errors = 0;      // answered 5xx (throttles included)
    uint64_t stalls_dropped = 0;     // connections dropped for moving too little (stall_timeout_seconds)
    uint64_t failed = 0;             // requests that failed for any reason (retried or not)
    LatencyHistogram first_byte_us;  // request sent to the first byte of the response
    LatencyHistogram duration_us;    // the whole request, sending through receiving
};

struct MetricsSnapshot {
    std::map<std::string, OperationMetrics> operations;
    uint64_t peak_connections = 0;  // the most connections open at once, as the connection pool reported
};

class Metrics {
public:
    // One finished attempt of a meta request made for `operation` (telemetry callback, any CRT thread).
    void record_attempt(const std::string &operation, const aws_s3_request_metrics *attempt);
    void add_bytes(const std::string &operation, uint64_t bytes);
    void add_bytes_in_place(const std::string &operation, uint64_t bytes);
    MetricsSnapshot snapshot() const;

private:
    mutable std::mutex mutex_;
    MetricsSnapshot state_;
};

}  // namespace s3tc
