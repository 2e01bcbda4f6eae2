// Blocking waits that leave Python responsive: the GIL is released and Ctrl-C is honoured.
#pragma once

#include "gil.h"
#include "profiler_span.h"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

namespace s3tc {

// Records Python's main thread, the only one whose waits need to run signal handlers.
void remember_main_thread();

// Waits on `cv` until `ready()` holds. The caller has released the GIL (GilReleased, gil.h) and holds `lock`.
// In the main thread, about ten times a second the wait takes the GIL to run Python's signal handlers; when one raises
// (KeyboardInterrupt), `on_interrupt` runs (without the lock) and the Python error is thrown.
void wait_interruptibly(std::unique_lock<std::mutex> &lock, std::condition_variable &cv,
                        const std::function<bool()> &ready, const std::function<void()> &on_interrupt);

// The scope of every wait on S3: a torch.profiler span named for the operation, then the GIL released (both
// ended in reverse order when the scope ends). Made with the GIL held.
class WaitingOnS3 {
public:
    explicit WaitingOnS3(const std::string &operation) : span_(operation) {}

private:
    ProfilerSpan span_;  // needs the GIL: made before, and ended after, the release
    GilReleased no_gil_;
};

}  // namespace s3tc
