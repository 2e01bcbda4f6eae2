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

    // The process's TLS context, for AWS_CA_BUNDLE as it is at the first call (a bundle that cannot be used
    // raises, and the next call tries again). Only https endpoints and credential providers need one; parsing
    // the trust store is most of what starting a client costs, so the import's background thread makes it
    // ahead (start_crt_library_init) and the first call takes that one when the bundle is still the same.
    aws_tls_ctx *tls_context();

private:
    aws_tls_ctx *tls_ = nullptr;
    std::string ca_bundle_;  // the AWS_CA_BUNDLE file tls_ trusts, or "" for the system's store
    friend std::string trusted_ca_bundle();
};

// Initialises the CRT's libraries (their errors and log subjects) once per process; Runtime::current() does too.
void init_crt_library();

// Starts initialising the CRT's libraries, then making the process's TLS context (tls_context()), on a thread
// of its own, so that the first client of the process need not wait for them (tens of ms each, most of it the
// parse of the trust store). Called when the module is imported, while the rest of the package (torch) is
// still being imported. Anything that needs the libraries or the context waits for that thread; so does a
// fork (runtime_before_fork: the child gets the libraries whole, and makes a context of its own), and the
// interpreter's exit.
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
