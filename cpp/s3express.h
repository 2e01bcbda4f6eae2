// S3 Express One Zone: which buckets are directory buckets, where they live, and how their requests are signed.
#pragma once

#include <aws/auth/signing_config.h>

#include <string>

struct aws_credentials_provider;

namespace s3tc {

// The Availability Zone ID of a directory bucket ("usw2-az1" for "data--usw2-az1--x-s3"), or "" for any other
// bucket. S3 names directory buckets "<base name>--<zone id>--x-s3" and no other bucket may end in "--x-s3".
std::string directory_bucket_zone(const std::string &bucket);

// The zonal endpoint host of a directory bucket in `region`: "<bucket>.s3express-<zone>.<region>.amazonaws.com".
std::string zonal_host(const std::string &bucket, const std::string &zone, const std::string &region);

// The user's credentials for a directory bucket's sessions: those of `source` (the config holds a reference),
// except that finding none fails as a general-purpose bucket's request does (AWS_AUTH_SIGNING_NO_CREDENTIALS),
// not with the error of the chain's last provider, which names no credentials (instance metadata's HTTP error).
aws_credentials_provider *s3express_user_credentials(aws_credentials_provider *source);

// A signing config for a directory bucket's requests: each is signed for service "s3express" with the key of a
// session the CRT makes with CreateSession (signed with `credentials`), caches per bucket and renews before it
// expires. `region` and `credentials` must outlive the config.
aws_signing_config_aws s3express_signing_config(const std::string &region, aws_credentials_provider *credentials);

}  // namespace s3tc
