// Names under "localhost" (RFC 6761, section 6.3: "bucket.localhost") as the loopback host.
#pragma once

struct aws_host_resolver;

namespace s3tc {

// Makes `resolver` answer a name ending in ".localhost" with the addresses of "localhost" itself, as curl and
// browsers do; the system resolver (files, then DNS) does not know them. They are how a client reaches a local
// server virtual-hosted: an S3 Express directory bucket, which has no path-style addressing, on
// http://localhost:9000 is <bucket>.localhost:9000. Every other name resolves as before.
void resolve_localhost_names(aws_host_resolver *resolver);

}  // namespace s3tc
