#include "wait.h"

#include <pybind11/pybind11.h>

#include <chrono>
#include <optional>

namespace py = pybind11;

namespace s3tc {

void wait_interruptibly(std::unique_lock<std::mutex> &lock, std::condition_variable &cv,
                        const std::function<bool()> &ready, const std::function<void()> &on_interrupt) {
    constexpr auto signal_check_interval = std::chrono::milliseconds(100);
    while (!cv.wait_for(lock, signal_check_interval, ready)) {
        // Never take the GIL while holding the lock: a Python thread may be waiting for it.
        lock.unlock();
        std::optional<py::error_already_set> raised;
        {
            py::gil_scoped_acquire gil;
            if (PyErr_CheckSignals() != 0) {
                raised.emplace();
            }
        }
        if (raised) {
            on_interrupt();
            throw *raised;
        }
        lock.lock();
    }
}

}  // namespace s3tc
