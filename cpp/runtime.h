// The CRT's process-wide machinery: event loop threads, DNS resolver, TLS context.
#pragma once

#include <string>

struct aws_allocator;
struct aws_event_loop_group;
struct aws_host_resolver;
struct aws_client_bootstrap;
struct aws_tls_ctx;

namespace s3tc {

struct Runtime {
    aws_allocator *allocator = nullptr;
    aws_event_loop_group *event_loops = nullptr;
    aws_host_resolver *resolver = nullptr;
    aws_client_bootstrap *bootstrap = nullptr;
    aws_tls_ctx *tls = nullptr;
    std::string ca_bundle;  // the AWS_CA_BUNDLE file the TLS context trusts, or "" for the system's store
    int pid = 0;

    // The runtime of the calling process, made on first use. A forked child gets a new one:
    // the parent's event loop threads do not exist in the child.
    static Runtime &current();
};

// Initialises the CRT's libraries (their errors and log subjects) once per process; Runtime::current() does too.
void init_crt_library();

// The CA bundle the current process's runtime trusts ("" for the system's store, or before any runtime).
std::string trusted_ca_bundle();

int current_pid();
// False in a forked child for objects the parent made: their CRT threads were not copied,
// so releasing or cancelling them could block forever. They are left as they are.
bool created_in_this_process(int pid);

// The CRT's name and description of an error code, e.g. "AWS_IO_SOCKET_TIMEOUT: socket operation timed out".
std::string describe_crt_error(int error_code);

}  // namespace s3tc
