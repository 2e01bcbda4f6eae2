#include "client.h"

#include "crt_internals.h"
#include "list_result.h"
#include "runtime.h"
#include "s3express.h"
#include "single_attempt_retry.h"
#include "text.h"

#include <aws/common/byte_buf.h>
#include <aws/common/error.h>
#include <aws/http/connection.h>
#include <aws/io/retry_strategy.h>
#include <aws/io/tls_channel_handler.h>

#include <pybind11/pybind11.h>

#include <arpa/inet.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace py = pybind11;

namespace s3tc {
namespace {

std::string encode(const std::string &text, bool keep_slash) {
    aws_byte_buf out;
    aws_byte_buf_init(&out, aws_default_allocator(), text.size() * 3 + 1);
    aws_byte_cursor in = cursor(text);
    if (keep_slash) {
        aws_byte_buf_append_encoding_uri_path(&out, &in);
    } else {
        aws_byte_buf_append_encoding_uri_param(&out, &in);
    }
    std::string encoded(reinterpret_cast<const char *>(out.buffer), out.len);
    aws_byte_buf_clean_up(&out);
    return encoded;
}

bool is_ip_address(const std::string &host) {
    unsigned char scratch[sizeof(in6_addr)];
    std::string bare = host;
    if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
    return inet_pton(AF_INET, bare.c_str(), scratch) == 1 || inet_pton(AF_INET6, bare.c_str(), scratch) == 1;
}

// Where each key's element lives in a ListObjectsV2 response.
aws_s3_checksum_algorithm checksum_algorithm(const std::string &name) {
    if (name == "CRC32C") return AWS_SCA_CRC32C;
    if (name == "CRC32") return AWS_SCA_CRC32;
    if (name == "CRC64NVME") return AWS_SCA_CRC64NVME;
    if (name == "SHA1") return AWS_SCA_SHA1;
    if (name == "SHA256") return AWS_SCA_SHA256;
    if (name.empty()) return AWS_SCA_NONE;
    throw std::invalid_argument("unknown checksum algorithm '" + name +
                                "': use CRC32C, CRC32, CRC64NVME, SHA1, SHA256 or none");
}

// The CRT sizes its connection pool for large transfers, by the throughput target (crt_internals.h, item 3). Small
// objects are bound by latency, not bandwidth: a dataset keeps up to 64 GETs in flight, each on a connection of its
// own, and a pool of fewer connections caps the objects read a second at connections / latency. So the pool gets at
// least 64 connections, while each single request stays within what the configured target gives it, and so does
// the pool's memory.
constexpr uint32_t min_pool_connections = 64;

uint32_t connections_for(double throughput_target_gbps) {
    return std::max(crt::min_connections,
                    static_cast<uint32_t>(std::ceil(throughput_target_gbps / crt::gbps_per_connection)));
}

bool memory_limit_set_by_environment() {
    for (const char *name : {"AWS_CRT_S3_MEMORY_LIMIT_IN_MB", "AWS_CRT_S3_MEMORY_LIMIT_IN_GIB"}) {
        const char *value = std::getenv(name);
        if (value != nullptr && *value != '\0') return true;
    }
    return false;
}

}  // namespace

RequestTarget::RequestTarget(aws_http_message *message, const std::string &endpoint_uri)
    : message_(message), endpoint_text_(endpoint_uri), endpoint_{} {
    aws_byte_cursor text = cursor(endpoint_text_);
    if (aws_uri_init_parse(&endpoint_, aws_default_allocator(), &text) != AWS_OP_SUCCESS) {
        aws_http_message_release(message_);
        throw std::invalid_argument("invalid endpoint URI: " + endpoint_uri);
    }
}

RequestTarget::~RequestTarget() {
    aws_uri_clean_up(&endpoint_);
    aws_http_message_release(message_);
}

void RequestTarget::apply(aws_s3_meta_request_options &options) {
    options.message = message_;
    options.endpoint = &endpoint_;
    if (signing_ != nullptr) options.signing_config = signing_;
}

Client::Client(ClientConfig config) : config_(std::move(config)) {
    Runtime &runtime = Runtime::current();

    if (config_.endpoint.empty()) {
        scheme_ = "https";
        host_ = "s3." + config_.region + ".amazonaws.com";
        path_style_ = config_.force_path_style;
    } else {
        aws_uri parsed;
        aws_byte_cursor text = cursor(config_.endpoint);
        if (aws_uri_init_parse(&parsed, runtime.allocator, &text) != AWS_OP_SUCCESS) {
            throw std::invalid_argument(
                "endpoint '" + config_.endpoint +
                "' is not a URI; give one like https://s3.example.com or http://127.0.0.1:9000");
        }
        scheme_ = to_string(*aws_uri_scheme(&parsed));
        host_ = to_string(*aws_uri_host_name(&parsed));
        port_ = aws_uri_port(&parsed);
        aws_uri_clean_up(&parsed);
        for (auto &c : scheme_) c = static_cast<char>(tolower(c));
        if ((scheme_ != "http" && scheme_ != "https") || host_.empty()) {
            throw std::invalid_argument("endpoint '" + config_.endpoint +
                                        "' must start with http:// or https:// and name a host");
        }
        // Virtual-hosted names cannot resolve under an IP address. Under localhost they do (localhost_names.h), but
        // local servers are mostly set up for path style.
        ip_endpoint_ = is_ip_address(host_);
        path_style_ = config_.force_path_style || ip_endpoint_ || host_ == "localhost";
    }

    checksum_algorithm(config_.upload_checksum);  // refuse an unknown name now, not at the first upload

    // TLS for an https endpoint, and for the credential providers (STS, SSO) of signed requests; made before
    // anything that would have to be released when it fails.
    const bool https = scheme_ == "https";
    aws_tls_ctx *tls = https || !config_.unsigned_requests ? runtime.tls_context() : nullptr;

    if (config_.unsigned_requests) {
        // Anonymous credentials make the signer leave requests unsigned.
        aws_credentials_provider_shutdown_options no_shutdown = {};
        credentials_ = aws_credentials_provider_new_anonymous(runtime.allocator, &no_shutdown);
    } else {
        aws_credentials_provider_chain_default_options chain = {};
        chain.bootstrap = runtime.bootstrap;
        chain.tls_ctx = tls;
        if (!config_.profile.empty()) chain.profile_name_override = cursor(config_.profile);
        credentials_ = aws_credentials_provider_new_chain_default(runtime.allocator, &chain);
    }
    if (credentials_ == nullptr) {
        throw std::runtime_error("cannot set up AWS credentials: " + describe_crt_error(aws_last_error()));
    }
    aws_s3_init_default_signing_config(&signing_, cursor(config_.region), credentials_);
    if (!config_.unsigned_requests) {
        s3express_credentials_ = s3express_user_credentials(credentials_);
        if (s3express_credentials_ == nullptr) {
            int error = aws_last_error();
            release_crt_objects();
            throw std::runtime_error("cannot set up AWS credentials: " + describe_crt_error(error));
        }
        s3express_signing_ = s3express_signing_config(config_.region, s3express_credentials_);
    }

    aws_s3_client_config client_config = {};
    client_config.region = cursor(config_.region);
    client_config.client_bootstrap = runtime.bootstrap;
    if (https) {
        aws_tls_connection_options_init_from_ctx(&tls_, tls);
        client_config.tls_mode = AWS_MR_TLS_ENABLED;
        client_config.tls_connection_options = &tls_;
    } else {
        // Every request of this client goes to its http endpoint: without this the CRT would make a TLS
        // context of its own (and parse the trust store) for requests it never sends.
        client_config.tls_mode = AWS_MR_TLS_DISABLED;
    }
    client_config.signing_config = &signing_;
    // The CRT's S3 Express credentials: made on a directory bucket's first request, then one session per bucket.
    client_config.enable_s3express = !config_.unsigned_requests;
    client_config.part_size = config_.part_size;
    client_config.throughput_target_gbps =
        std::max(config_.throughput_target_gbps, min_pool_connections * crt::gbps_per_connection);
    max_connections_per_request_ = connections_for(config_.throughput_target_gbps);
    if (config_.memory_limit_bytes != 0) {
        client_config.memory_limit_in_bytes = config_.memory_limit_bytes;
    } else if (!memory_limit_set_by_environment()) {
        client_config.memory_limit_in_bytes =
            aws_s3_default_memory_limit_for_throughput(config_.throughput_target_gbps);
    }
    if (config_.max_attempts <= 1) {
        retry_ = new_single_attempt_retry_strategy(runtime.allocator, runtime.event_loops);
        client_config.retry_strategy = retry_;
    } else {
        // The CRT's backoff strategy accepts at most 63 retries.
        client_config.retry_config.max_retries = static_cast<size_t>(std::min(config_.max_attempts - 1, 63));
    }
    aws_http_connection_monitoring_options monitoring = {};  // the CRT copies it
    monitoring.minimum_throughput_bytes_per_second = config_.min_throughput_bytes_per_second;
    monitoring.allowable_throughput_failure_interval_seconds = config_.stall_timeout_seconds;
    client_config.monitoring_options = &monitoring;
    client_config.enable_read_backpressure = true;
    client_config.initial_read_window = static_cast<size_t>(initial_read_window());

    std::vector<aws_byte_cursor> interfaces;  // the CRT copies the names
    for (const std::string &name : config_.network_interface_names) interfaces.push_back(cursor(name));
    client_config.network_interface_names_array = interfaces.data();
    client_config.num_network_interface_names = interfaces.size();

    client_config.buffer_pool_factory_fn = LandingPool::make;
    client_config.buffer_pool_user_data = &landing_pool_;

    client_ = aws_s3_client_new(runtime.allocator, &client_config);
    if (client_ == nullptr) {
        int error = aws_last_error();
        release_crt_objects();
        throw std::invalid_argument("cannot create the S3 client: " + describe_crt_error(error));
    }
}

Client::~Client() {
    if (!made_in_.is_current()) return;  // the parent's, in a forked child (fork.h, rule 1)
    release_crt_objects();
}

void Client::release_crt_objects() {
    // Releases are asynchronous: requests still in flight keep what they need alive.
    if (client_ != nullptr) aws_s3_client_release(client_);
    if (retry_ != nullptr) aws_retry_strategy_release(retry_);
    if (credentials_ != nullptr) aws_credentials_provider_release(credentials_);
    if (s3express_credentials_ != nullptr) aws_credentials_provider_release(s3express_credentials_);
    aws_tls_connection_options_clean_up(&tls_);
    client_ = nullptr;
    landing_pool_ = nullptr;
    retry_ = nullptr;
    credentials_ = nullptr;
    s3express_credentials_ = nullptr;
}

std::string Client::object_uri(const std::string &bucket, const std::string &key) const {
    std::string authority = host_;
    if (port_ != 0) authority += ":" + std::to_string(port_);
    const std::string zone = directory_bucket_zone(bucket);
    if (!zone.empty()) {
        // S3 Express One Zone has virtual-hosted addressing only; its sessions are made per host.
        const std::string reason = config_.force_path_style ? "force_path_style=True is set"
                                   : ip_endpoint_           ? "endpoint " + config_.endpoint + " is an IP address"
                                                            : "";
        if (!reason.empty()) {
            throw std::invalid_argument(
                "cannot reach s3://" + bucket +
                ": an S3 Express One Zone directory bucket is addressed only as <bucket>.<endpoint host>, and " +
                reason +
                ". Use the zonal endpoint (no endpoint=), or a host name (http://localhost:<port> for a "
                "local server) without force_path_style");
        }
        if (config_.endpoint.empty())
            authority = zonal_host(bucket, zone, config_.region);
        else
            authority = bucket + "." + authority;
        return scheme_ + "://" + authority + "/" + encode(key, true);
    }
    // Dotted bucket names break the TLS certificate of virtual-hosted names: use path style for them.
    const bool path_style = path_style_ || (scheme_ == "https" && bucket.find('.') != std::string::npos);
    if (path_style) {
        std::string path = "/" + bucket;
        if (!key.empty()) path += "/" + encode(key, true);
        return scheme_ + "://" + authority + path;
    }
    return scheme_ + "://" + bucket + "." + authority + "/" + encode(key, true);
}

std::unique_ptr<RequestTarget> Client::target(const char *method, const std::string &bucket, const std::string &key,
                                              const std::string &query) const {
    const std::string uri = object_uri(bucket, key);
    // Split "scheme://authority/path" into the endpoint and the request path.
    const size_t path_start = uri.find('/', uri.find("://") + 3);
    std::string endpoint = path_start == std::string::npos ? uri : uri.substr(0, path_start);
    std::string path = path_start == std::string::npos ? "/" : uri.substr(path_start);
    if (!query.empty()) path += "?" + query;

    aws_http_message *message = aws_http_message_new_request(aws_default_allocator());
    aws_http_message_set_request_method(message, aws_byte_cursor_from_c_str(method));
    aws_http_message_set_request_path(message, cursor(path));
    aws_http_headers *headers = aws_http_message_get_headers(message);
    if (!config_.user_agent.empty()) {
        aws_http_headers_set(headers, aws_byte_cursor_from_c_str("User-Agent"), cursor(config_.user_agent));
    }
    if (config_.requester_pays) {
        aws_http_headers_set(headers, aws_byte_cursor_from_c_str("x-amz-request-payer"),
                             aws_byte_cursor_from_c_str("requester"));
    }
    auto made = std::make_unique<RequestTarget>(message, endpoint);
    if (!config_.unsigned_requests && !directory_bucket_zone(bucket).empty()) made->sign_with(&s3express_signing_);
    return made;
}

void Client::apply_checksums(aws_s3_meta_request_options &options, aws_s3_checksum_config &storage, bool upload) const {
    storage = {};
    if (upload) {
        storage.checksum_algorithm = checksum_algorithm(config_.upload_checksum);
        if (storage.checksum_algorithm == AWS_SCA_NONE) return;
        storage.location = AWS_SCL_TRAILER;  // computed while streaming, verified by S3
    } else {
        if (!config_.validate_checksums) return;
        storage.validate_response_checksum = true;
    }
    options.checksum_config = &storage;
}

OperationContext Client::context(const std::string &operation, const std::string &bucket,
                                 const std::string &key) const {
    OperationContext context;
    context.operation = operation;
    context.bucket = bucket;
    context.key = key;
    const std::string zone = directory_bucket_zone(bucket);
    if (!config_.endpoint.empty())
        context.endpoint = config_.endpoint;
    else
        context.endpoint = scheme_ + "://" + (zone.empty() ? host_ : zonal_host(bucket, zone, config_.region));
    context.max_attempts = config_.max_attempts;
    return context;
}

std::shared_ptr<BufferedRequest> Client::run(const std::string &operation, const std::string &bucket,
                                             const std::string &key, RequestTarget &target, RunOptions extra) {
    auto request = std::make_shared<BufferedRequest>(context(operation, bucket, key),
                                                     extra.body ? std::move(*extra.body) : std::vector<uint8_t>());
    aws_s3_meta_request_options options = {};
    options.type = extra.type;
    if (extra.type == AWS_S3_META_REQUEST_TYPE_DEFAULT) options.operation_name = cursor(operation);
    if (!extra.copy_source_uri.empty()) options.copy_source_uri = cursor(extra.copy_source_uri);
    if (extra.body) {
        // A non-null pointer tells the CRT there is a body, even an empty one.
        static const uint8_t no_bytes = 0;
        const std::vector<uint8_t> &body = request->request_body();
        options.request_body = aws_byte_cursor_from_array(body.empty() ? &no_bytes : body.data(), body.size());
    }
    aws_s3_checksum_config checksums;
    if (extra.upload) apply_checksums(options, checksums, true);
    target.apply(options);
    request->start(*this, options);
    request->wait_finished();
    request->throw_if_failed();
    metrics_->add_bytes(operation, request->request_body().size());
    return request;
}

ObjectInfo Client::head_object(const std::string &bucket, const std::string &key) {
    auto target_ = target("HEAD", bucket, key);
    auto request = run("HeadObject", bucket, key, *target_);
    return object_info_from_headers(key, request->headers());
}

void Client::delete_object(const std::string &bucket, const std::string &key) {
    // A DELETE of no key is a DeleteBucket.
    if (key.empty()) throw std::invalid_argument("cannot delete s3://" + bucket + "/: no key given");
    auto target_ = target("DELETE", bucket, key);
    run("DeleteObject", bucket, key, *target_);
}

void Client::copy_object(const std::string &src_bucket, const std::string &src_key, const std::string &dst_bucket,
                         const std::string &dst_key) {
    auto target_ = target("PUT", dst_bucket, dst_key);
    aws_http_headers_set(aws_http_message_get_headers(target_->message()),
                         aws_byte_cursor_from_c_str("x-amz-copy-source"),
                         cursor(src_bucket + "/" + encode(src_key, true)));
    RunOptions extra;
    extra.type = AWS_S3_META_REQUEST_TYPE_COPY_OBJECT;
    extra.copy_source_uri = object_uri(src_bucket, src_key);
    try {
        run("CopyObject", dst_bucket, dst_key, *target_, std::move(extra));
    } catch (S3Error &error) {
        // A missing key is the source's: the destination need not exist (and the CRT's HEAD of the source answers
        // without a body, so without a code).
        if (error.status == 404 && error.code != "NoSuchBucket") {
            error.bucket = src_bucket;
            error.key = src_key;
        }
        throw;
    }
}

ListPage Client::list_objects(const std::string &bucket, const std::string &prefix, const std::string &delimiter,
                              int max_keys, const std::string &continuation_token, const std::string &start_after) {
    // A directory bucket lists only prefixes that end in "/" and groups keys only by "/": the folder of the prefix
    // is listed, and what does not start with the prefix left out. Its listing takes no x-amz-request-payer.
    const bool directory_bucket = !directory_bucket_zone(bucket).empty();
    if (directory_bucket && !delimiter.empty() && delimiter != "/") {
        throw std::invalid_argument("cannot list s3://" + bucket + " with delimiter '" + delimiter +
                                    "': S3 Express One Zone directory buckets group keys only by '/'");
    }
    const std::string listed_prefix = directory_bucket ? prefix.substr(0, prefix.rfind('/') + 1) : prefix;
    std::string query = "list-type=2&max-keys=" + std::to_string(max_keys);
    if (!listed_prefix.empty()) query += "&prefix=" + encode(listed_prefix, false);
    if (!delimiter.empty()) query += "&delimiter=" + encode(delimiter, false);
    if (!continuation_token.empty()) query += "&continuation-token=" + encode(continuation_token, false);
    if (!start_after.empty()) query += "&start-after=" + encode(start_after, false);
    auto target_ = target("GET", bucket, "", query);
    if (directory_bucket) {
        aws_http_headers_erase(aws_http_message_get_headers(target_->message()),
                               aws_byte_cursor_from_c_str("x-amz-request-payer"));
    }
    auto request = run("ListObjectsV2", bucket, "", *target_);

    ListResult result;
    if (!parse_list_result(request->response_body(), result)) {
        Outcome bad;
        bad.error_code = AWS_ERROR_S3_INVALID_RESPONSE_STATUS;
        S3Error error(request->context(), bad);
        error.code = "MalformedResponse";
        error.key = prefix;
        throw error;
    }
    auto under_prefix = [&prefix](const std::string &name) { return name.compare(0, prefix.size(), prefix) == 0; };
    ListPage page;
    page.objects.reserve(result.objects.size());
    for (auto &info : result.objects) {
        if (under_prefix(info.key)) page.objects.push_back(std::move(info));
    }
    for (auto &common : result.prefixes) {
        if (under_prefix(common)) page.common_prefixes.push_back(std::move(common));
    }
    if (result.truncated) page.next_continuation_token = std::move(result.next_continuation_token);
    return page;
}

void Client::put_small_object(const std::string &bucket, const std::string &key, std::vector<uint8_t> body,
                              const std::string &storage_class) {
    auto target_ = target("PUT", bucket, key);
    aws_http_headers *headers = aws_http_message_get_headers(target_->message());
    aws_http_headers_set(headers, aws_byte_cursor_from_c_str("Content-Length"), cursor(std::to_string(body.size())));
    if (!storage_class.empty()) {
        aws_http_headers_set(headers, aws_byte_cursor_from_c_str("x-amz-storage-class"), cursor(storage_class));
    }
    RunOptions extra;
    extra.body = std::move(body);
    extra.upload = true;
    run("PutObject", bucket, key, *target_, std::move(extra));
}

}  // namespace s3tc
