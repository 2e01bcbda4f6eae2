#include "runtime.h"

#include "localhost_names.h"
#include "logging.h"

#include <aws/common/error.h>
#include <aws/io/channel.h>
#include <aws/io/channel_bootstrap.h>
#include <aws/io/event_loop.h>
#include <aws/io/host_resolver.h>
#include <aws/io/tls_channel_handler.h>
#include <aws/s3/s3.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace s3tc {
namespace {

std::mutex runtime_mutex;
Runtime *runtime = nullptr;

aws_tls_ctx *new_tls_context(aws_allocator *allocator, const std::string &ca_bundle) {
    aws_tls_ctx_options options;
    aws_tls_ctx_options_init_default_client(&options, allocator);
    const std::string bad_bundle =
        "cannot use AWS_CA_BUNDLE " + ca_bundle + " (it must be a readable file of PEM certificates): ";
    if (!ca_bundle.empty() && aws_tls_ctx_options_override_default_trust_store_from_path(
                                  &options, nullptr, ca_bundle.c_str()) != AWS_OP_SUCCESS) {
        aws_tls_ctx_options_clean_up(&options);
        throw std::runtime_error(bad_bundle + describe_crt_error(aws_last_error()));
    }
    aws_tls_ctx *tls = aws_tls_client_ctx_new(allocator, &options);
    aws_tls_ctx_options_clean_up(&options);
    if (tls == nullptr) {
        // With a bundle given, it is what the TLS library refused (a damaged or truncated certificate).
        throw std::runtime_error((ca_bundle.empty() ? std::string("cannot create the TLS context: ") : bad_bundle) +
                                 describe_crt_error(aws_last_error()));
    }
    return tls;
}

std::string ca_bundle_from_environment() {
    const char *ca_bundle = std::getenv("AWS_CA_BUNDLE");
    return ca_bundle == nullptr ? "" : ca_bundle;
}

// A TLS context the import's background thread made ahead of any client (runtime_mutex guards the pointer).
struct ReadyTls {
    aws_tls_ctx *context;
    std::string ca_bundle;  // AWS_CA_BUNDLE when it was made: a client takes it only if that is still the bundle
    MadeInProcess made_in;
};
ReadyTls *ready_tls = nullptr;

// Parsing the trust store is most of a client's start-up (60-70 ms here), and every real client needs the
// context: for its https endpoint, or for the credential providers a signed client sets up. Made while the
// rest of the package (torch) imports, it is ready when the first client asks. A failure is left for that
// client's own attempt to raise.
void make_tls_context_ahead() {
    const std::string bundle = ca_bundle_from_environment();
    aws_tls_ctx *context = nullptr;
    try {
        context = new_tls_context(aws_default_allocator(), bundle);
    } catch (const std::exception &) {
        return;
    }
    std::lock_guard<std::mutex> lock(runtime_mutex);
    ready_tls = new ReadyTls{context, bundle, MadeInProcess()};
}

// With runtime_mutex held: the context made ahead, if this process made it for `bundle`. One made for another
// bundle (AWS_CA_BUNDLE changed since the import) is released; one a parent made is left alone (fork.h, rule 1).
aws_tls_ctx *take_tls_context_made_ahead(const std::string &bundle) {
    if (ready_tls == nullptr || !ready_tls->made_in.is_current()) return nullptr;
    aws_tls_ctx *context = ready_tls->context;
    const bool fits = ready_tls->ca_bundle == bundle;
    delete ready_tls;
    ready_tls = nullptr;
    if (fits) return context;
    aws_tls_ctx_release(context);
    return nullptr;
}

bool library_ready = false;

// The most a connection reads from its socket per event-loop tick, and the size of the messages that carry the
// bytes through the channel (aws-c-io's default is 16 KiB, a TLS record). With 16 KiB, every 16 KiB of a body
// costs a read, a message, a pass through the HTTP decoder and a task to read again on the next tick; 256 KiB
// cut the CPU of a cold 256 MiB read on loopback from 0.29 to 0.24 s and of a 256 MiB upload from 0.15 to
// 0.11 s (medians, A/B in one run). TLS records stay 16 KiB: only the reads and messages are larger.
constexpr size_t channel_fragment_size = 256 * 1024;

// With runtime_mutex held.
void init_library_locked() {
    if (!library_ready) {
        aws_s3_library_init(aws_default_allocator());
        g_aws_channel_max_fragment_size = channel_fragment_size;  // before any channel exists
        library_ready = true;
    }
}

Runtime *new_runtime() {
    aws_allocator *allocator = aws_default_allocator();
    init_library_locked();

    auto *rt = new Runtime();
    rt->allocator = allocator;

    aws_event_loop_group_options loop_options = {};
    // One loop per CPU: given 0, the CRT takes half the CPUs, a single thread on a 2-core machine,
    // and that one thread then caps a download well below what the machine can do.
    loop_options.loop_count = static_cast<uint16_t>(std::max(1u, std::thread::hardware_concurrency()));
    rt->event_loops = aws_event_loop_group_new(allocator, &loop_options);
    if (rt->event_loops == nullptr) {
        throw std::runtime_error("cannot start the CRT event loops: " + describe_crt_error(aws_last_error()));
    }
    aws_host_resolver_default_options resolver_options = {};
    resolver_options.max_entries = 64;
    resolver_options.el_group = rt->event_loops;
    rt->resolver = aws_host_resolver_new_default(allocator, &resolver_options);
    resolve_localhost_names(rt->resolver);

    aws_client_bootstrap_options bootstrap_options = {};
    bootstrap_options.event_loop_group = rt->event_loops;
    bootstrap_options.host_resolver = rt->resolver;
    rt->bootstrap = aws_client_bootstrap_new(allocator, &bootstrap_options);
    if (rt->resolver == nullptr || rt->bootstrap == nullptr) {
        throw std::runtime_error("cannot start the CRT resolver: " + describe_crt_error(aws_last_error()));
    }
    log_native(log_level_debug, "CRT runtime started in process %d: %u event loop threads", rt->made_in.pid(),
               static_cast<unsigned>(loop_options.loop_count));
    return rt;
}

// The library initialisation started by start_crt_library_init(), if any.
std::mutex background_mutex;
std::condition_variable background_done;
bool background_started = false;
bool background_running = false;

void finish_background_init() {
    {
        std::lock_guard<std::mutex> lock(background_mutex);
        background_running = false;
    }
    background_done.notify_all();
}

}  // namespace

Runtime &Runtime::current() {
    std::lock_guard<std::mutex> lock(runtime_mutex);
    if (runtime == nullptr || !runtime->made_in.is_current()) {
        if (runtime != nullptr) {  // the parent's, left as it is (fork.h, rule 1)
            log_native(log_level_debug, "process %d was forked from process %d: it gets a CRT runtime of its own",
                       current_pid(), runtime->made_in.pid());
        }
        runtime = new_runtime();
    }
    return *runtime;
}

aws_tls_ctx *Runtime::tls_context() {
    wait_for_crt_library_init();  // it may be making the context right now: take that one, not a second
    std::lock_guard<std::mutex> lock(runtime_mutex);
    if (tls_ == nullptr) {
        // Honour a private CA bundle the way boto3 and the AWS CLI do.
        const std::string bundle = ca_bundle_from_environment();
        aws_tls_ctx *made_ahead = take_tls_context_made_ahead(bundle);
        tls_ = made_ahead != nullptr ? made_ahead : new_tls_context(allocator, bundle);
        ca_bundle_ = bundle;
        log_native(log_level_debug, "TLS context %s in process %d, trusting %s",
                   made_ahead != nullptr ? "made at import" : "made", made_in.pid(),
                   bundle.empty() ? "the system's certificates" : bundle.c_str());
    }
    return tls_;
}

void init_crt_library() {
    std::lock_guard<std::mutex> lock(runtime_mutex);
    init_library_locked();
}

void start_crt_library_init() {
    {
        std::lock_guard<std::mutex> lock(background_mutex);
        if (background_started) return;
        background_started = true;
        background_running = true;
    }
    try {
        std::thread([] {
            init_crt_library();
            make_tls_context_ahead();
            finish_background_init();
        }).detach();
    } catch (const std::system_error &) {
        finish_background_init();  // no thread to spare: the first use initialises them instead
    }
}

void wait_for_crt_library_init() {
    std::unique_lock<std::mutex> lock(background_mutex);
    background_done.wait(lock, [] { return !background_running; });
}

std::string trusted_ca_bundle() {
    std::lock_guard<std::mutex> lock(runtime_mutex);
    return runtime == nullptr ? "" : runtime->ca_bundle_;
}

void runtime_before_fork() {
    wait_for_crt_library_init();  // its thread is not copied: the child must not inherit it half done
    background_mutex.lock();
    runtime_mutex.lock();
}

void runtime_after_fork() {
    runtime_mutex.unlock();
    background_mutex.unlock();
}

std::string describe_crt_error(int error_code) {
    return std::string(aws_error_name(error_code)) + ": " + aws_error_str(error_code);
}

}  // namespace s3tc
