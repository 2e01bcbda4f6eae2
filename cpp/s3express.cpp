#include "s3express.h"

#include "text.h"

#include <aws/auth/credentials.h>
#include <aws/s3/s3_client.h>

namespace s3tc {
namespace {

// One get_credentials call of s3express_user_credentials' provider, forwarded to its source.
struct CredentialsCall {
    aws_on_get_credentials_callback_fn *callback;
    void *user_data;
};

void on_source_credentials(aws_credentials *credentials, int error_code, void *user_data) {
    auto *call = static_cast<CredentialsCall *>(user_data);
    if (credentials == nullptr) error_code = AWS_AUTH_SIGNING_NO_CREDENTIALS;
    call->callback(credentials, error_code, call->user_data);
    delete call;
}

int get_from_source(void *source, aws_on_get_credentials_callback_fn callback, void *user_data) {
    auto *call = new CredentialsCall{callback, user_data};
    if (aws_credentials_provider_get_credentials(static_cast<aws_credentials_provider *>(source), on_source_credentials,
                                                 call) != AWS_OP_SUCCESS) {
        delete call;
        return AWS_OP_ERR;
    }
    return AWS_OP_SUCCESS;
}

void release_source(void *source) { aws_credentials_provider_release(static_cast<aws_credentials_provider *>(source)); }

}  // namespace

aws_credentials_provider *s3express_user_credentials(aws_credentials_provider *source) {
    aws_credentials_provider_delegate_options options = {};
    options.get_credentials = get_from_source;
    options.delegate_user_data = aws_credentials_provider_acquire(source);
    options.shutdown_options.shutdown_callback = release_source;
    options.shutdown_options.shutdown_user_data = source;
    aws_credentials_provider *made = aws_credentials_provider_new_delegate(aws_default_allocator(), &options);
    if (made == nullptr) aws_credentials_provider_release(source);
    return made;
}

std::string directory_bucket_zone(const std::string &bucket) {
    static const std::string suffix = "--x-s3";
    if (bucket.size() <= suffix.size() || bucket.compare(bucket.size() - suffix.size(), suffix.size(), suffix) != 0) {
        return "";
    }
    const std::string rest = bucket.substr(0, bucket.size() - suffix.size());
    const size_t separator = rest.rfind("--");
    if (separator == std::string::npos || separator == 0) return "";
    const std::string zone = rest.substr(separator + 2);
    if (zone.empty()) return "";
    for (char c : zone) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return "";
    }
    return zone;
}

std::string zonal_host(const std::string &bucket, const std::string &zone, const std::string &region) {
    return bucket + ".s3express-" + zone + "." + region + ".amazonaws.com";
}

aws_signing_config_aws s3express_signing_config(const std::string &region, aws_credentials_provider *credentials) {
    aws_signing_config_aws config;
    aws_s3_init_default_signing_config(&config, cursor(region), credentials);
    config.algorithm = AWS_SIGNING_ALGORITHM_V4_S3EXPRESS;
    config.service = aws_byte_cursor_from_c_str("s3express");
    return config;
}

}  // namespace s3tc
