// The CRT's process-wide machinery: event loop threads, DNS resolver, TLS context.
#pragma once

#include "fork.h"

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
    MadeInProcess made_in;

    // The runtime of the calling process, made on first use. A forked child gets a new one (fork.h, rule 2).
    static Runtime &current();

    // The process's TLS context, made on the first call from AWS_CA_BUNDLE as it is then (a bundle that
    // cannot be used raises, and the next call tries again). Only https endpoints and credential providers
    // need one: parsing the trust store is most of what starting a client costs, so a process that talks
    // plain http to its endpoint never pays for it.
    aws_tls_ctx *tls_context();

private:
    aws_tls_ctx *tls_ = nullptr;
    std::string ca_bundle_;  // the AWS_CA_BUNDLE file tls_ trusts, or "" for the system's store
    friend std::string trusted_ca_bundle();
};

// Initialises the CRT's libraries (their errors and log subjects) once per process; Runtime::current() does too.
void init_crt_library();

// Starts initialising the CRT's libraries on a thread of its own, so that the first client of the process
// need not wait for it (it costs tens of ms, most of it TLS's parse of the system's trust store, which the
// CRT does at start-up whether or not TLS is used). Called when the module is imported, while the rest of
// the package (torch) is still being imported. Anything that needs the libraries waits for that thread;
// so does a fork (runtime_before_fork: the child gets them whole), and the interpreter's exit.
void start_crt_library_init();
// Returns once the libraries are initialised, if start_crt_library_init() was called.
void wait_for_crt_library_init();

// The CA bundle the current process's runtime trusts ("" for the system's store, or before any runtime).
std::string trusted_ca_bundle();

// The fork handlers' part for the runtime (fork.h, rule 3): before, waits for the libraries' initialisation and
// takes the runtime's locks; after, in parent and child alike, gives them back.
void runtime_before_fork();
void runtime_after_fork();

// The CRT's name and description of an error code, e.g. "AWS_IO_SOCKET_TIMEOUT: socket operation timed out".
std::string describe_crt_error(int error_code);

}  // namespace s3tc
