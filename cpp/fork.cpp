#include "fork.h"

#include "logging.h"
#include "runtime.h"

#include <pthread.h>
#include <unistd.h>
#include <mutex>

namespace s3tc {
namespace {

// One set of handlers, so the order is written here rather than implied by the order of registration. The
// runtime's locks come before the logger's: a thread that holds the runtime's lock may log, never the reverse.
void before_fork() {
    runtime_before_fork();
    logging_before_fork();
}

void after_fork_in_parent() {
    logging_after_fork_in_parent();
    runtime_after_fork();
}

void after_fork_in_child() {
    logging_after_fork_in_child();
    runtime_after_fork();
}

}  // namespace

MadeInProcess::MadeInProcess() : pid_(current_pid()) {}

bool MadeInProcess::is_current() const { return pid_ == current_pid(); }

int current_pid() { return static_cast<int>(getpid()); }

void install_fork_handlers() {
    static std::once_flag installed;
    std::call_once(installed, [] { pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child); });
}

}  // namespace s3tc
