// The native S3 client: one aws_s3_client, its credentials, and the small one-shot operations.
#pragma once

#include "fork.h"
#include "landing_pool.h"
#include "metrics.h"
#include "object_info.h"
#include "request.h"

#include <aws/auth/credentials.h>
#include <aws/auth/signing_config.h>
#include <aws/common/uri.h>
#include <aws/http/request_response.h>
#include <aws/io/tls_channel_handler.h>
#include <aws/s3/s3_client.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace s3tc {

// Every setting of a native client, as (type, name). Python owns their defaults and validation
// (S3ClientConfig.native_options in s3client_config.py) and passes each one: the binding refuses a missing or
// unknown name, so no default lives here. A new option is one line here and one field there.
//   endpoint: "" for AWS's regional endpoint. upload_checksum: "" for none.
//   validate_checksums: check downloads against the object's checksum (a HEAD when the size is unknown).
//   stall_timeout_seconds, min_throughput_bytes_per_second: a connection moving fewer bytes a second than the
//   minimum for that long while a request waits on it is dropped and the request retried.
//   memory_limit_bytes: the CRT's buffer memory, 0 for its default (for the throughput target, or its environment
//   variables). network_interface_names: the interfaces connections are spread over, none for the system's choice.
#define S3TC_CLIENT_CONFIG_FIELDS(FIELD)             \
    FIELD(std::string, region)                       \
    FIELD(std::string, endpoint)                     \
    FIELD(std::string, user_agent)                   \
    FIELD(double, throughput_target_gbps)            \
    FIELD(uint64_t, part_size)                       \
    FIELD(bool, unsigned_requests)                   \
    FIELD(bool, force_path_style)                    \
    FIELD(int, max_attempts)                         \
    FIELD(std::string, profile)                      \
    FIELD(bool, requester_pays)                      \
    FIELD(std::string, upload_checksum)              \
    FIELD(bool, validate_checksums)                  \
    FIELD(uint32_t, stall_timeout_seconds)           \
    FIELD(uint64_t, min_throughput_bytes_per_second) \
    FIELD(uint64_t, memory_limit_bytes)              \
    FIELD(std::vector<std::string>, network_interface_names)

struct ClientConfig {
#define S3TC_DECLARE_FIELD(type, name) type name{};
    S3TC_CLIENT_CONFIG_FIELDS(S3TC_DECLARE_FIELD)
#undef S3TC_DECLARE_FIELD
};

struct ListPage {
    std::vector<ObjectInfo> objects;
    std::vector<std::string> common_prefixes;
    std::string next_continuation_token;  // "" on the last page
};

// An HTTP request aimed at one bucket and key, ready to hand to the CRT.
class RequestTarget {
public:
    RequestTarget(aws_http_message *message, const std::string &endpoint_uri);
    ~RequestTarget();
    RequestTarget(const RequestTarget &) = delete;
    RequestTarget &operator=(const RequestTarget &) = delete;

    // Points `options` at this target; the target must outlive the call that makes the meta request.
    void apply(aws_s3_meta_request_options &options);
    aws_http_message *message() { return message_; }
    // Signs the request with `signing` instead of the client's config (which must outlive the request).
    void sign_with(const aws_signing_config_aws *signing) { signing_ = signing; }

private:
    aws_http_message *message_;
    std::string endpoint_text_;
    aws_uri endpoint_;
    const aws_signing_config_aws *signing_ = nullptr;
};

// How Client::run sends a request beyond its method and target.
struct RunOptions {
    aws_s3_meta_request_type type = AWS_S3_META_REQUEST_TYPE_DEFAULT;
    std::string copy_source_uri;
    std::optional<std::vector<uint8_t>> body;
    bool upload = false;  // carries object data: gets the upload checksum
};

class Client {
public:
    explicit Client(ClientConfig config);
    ~Client();
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    const ClientConfig &config() const { return config_; }
    aws_s3_client *handle() const { return client_; }
    // What this client's requests did so far; every request of the client records into it.
    const std::shared_ptr<Metrics> &metrics() const { return metrics_; }
    // The connections one request (a large GET or upload) may use: what the throughput target gives.
    uint32_t max_connections_per_request() const { return max_connections_per_request_; }
    // The client's buffer pool, which receives a download's parts straight into its destination when it can.
    LandingPool &landing_pool() const { return *landing_pool_; }
    // The read window the CRT gives every download at its start: one part. A whole-object download keeps it until
    // its destination exists, so that little is fetched into pool buffers and copied before then; any other
    // download is given least_read_ahead() as soon as it starts.
    uint64_t initial_read_window() const { return config_.part_size; }
    // The least any download may fetch ahead of its reader once it runs: eight parts.
    uint64_t least_read_ahead() const { return 8 * config_.part_size; }
    // An upload's parts: part_size, or S3's smallest (5 MiB, which the CRT also uses then) when it is smaller.
    // Objects of at most one part go up in a single PutObject.
    uint64_t upload_part_size() const { return std::max<uint64_t>(config_.part_size, 5 * 1024 * 1024); }

    // A request for `method` on bucket/key ("" key for the bucket itself); `query` without "?".
    std::unique_ptr<RequestTarget> target(const char *method, const std::string &bucket, const std::string &key,
                                          const std::string &query = "") const;
    // Fills `storage` and points `options` at it, for an upload or a download.
    void apply_checksums(aws_s3_meta_request_options &options, aws_s3_checksum_config &storage, bool upload) const;
    OperationContext context(const std::string &operation, const std::string &bucket, const std::string &key) const;
    // The URI of bucket/key on this client's endpoint, e.g. for a copy source. A directory bucket's is on its
    // zonal endpoint (or virtual-hosted on the given endpoint); std::invalid_argument when it cannot be reached.
    std::string object_uri(const std::string &bucket, const std::string &key) const;

    // Each blocks with the GIL released and raises S3Error on failure.
    ObjectInfo head_object(const std::string &bucket, const std::string &key);
    void delete_object(const std::string &bucket, const std::string &key);
    void copy_object(const std::string &src_bucket, const std::string &src_key, const std::string &dst_bucket,
                     const std::string &dst_key);
    // start_after: keys after it only (general-purpose buckets; a continuation token overrides it).
    ListPage list_objects(const std::string &bucket, const std::string &prefix, const std::string &delimiter,
                          int max_keys, const std::string &continuation_token, const std::string &start_after = "");
    void put_small_object(const std::string &bucket, const std::string &key, std::vector<uint8_t> body,
                          const std::string &storage_class);

private:
    // Runs one request to completion, collecting its response.
    std::shared_ptr<BufferedRequest> run(const std::string &operation, const std::string &bucket,
                                         const std::string &key, RequestTarget &target, RunOptions extra = {});

    void release_crt_objects();

    ClientConfig config_;
    std::string scheme_;
    std::string host_;
    uint32_t port_ = 0;
    bool path_style_ = false;
    bool ip_endpoint_ = false;  // the endpoint's host is an IP address: it has no virtual-hosted names
    aws_credentials_provider *credentials_ = nullptr;
    aws_signing_config_aws signing_{};
    aws_credentials_provider *s3express_credentials_ = nullptr;  // credentials_, for directory buckets' sessions
    aws_signing_config_aws s3express_signing_{};                 // for directory buckets; not made when unsigned
    aws_tls_connection_options tls_{};
    aws_retry_strategy *retry_ = nullptr;
    aws_s3_client *client_ = nullptr;
    LandingPool *landing_pool_ = nullptr;  // written by LandingPool::make; lives as long as client_, at least
    uint32_t max_connections_per_request_ = 0;
    std::shared_ptr<Metrics> metrics_ = std::make_shared<Metrics>();
    MadeInProcess made_in_;
};

}  // namespace s3tc
