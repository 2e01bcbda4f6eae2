// Blocking waits that leave Python responsive: the GIL is released and Ctrl-C is honoured.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>

namespace s3tc {

// Records Python's main thread, the only one whose waits need to run signal handlers.
void remember_main_thread();

// Waits on `cv` until `ready()` holds. The caller has released the GIL (GilReleased, gil.h) and holds `lock`.
// In the main thread, about ten times a second the wait takes the GIL to run Python's signal handlers; when one raises
// (KeyboardInterrupt), `on_interrupt` runs (without the lock) and the Python error is thrown.
void wait_interruptibly(std::unique_lock<std::mutex> &lock, std::condition_variable &cv,
                        const std::function<bool()> &ready, const std::function<void()> &on_interrupt);

}  // namespace s3tc
