#include "wait.h"

#include <pybind11/pybind11.h>

#include <chrono>
#include <optional>

namespace py = pybind11;

namespace s3tc {
namespace {

bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

}  // namespace

void wait_interruptibly(std::unique_lock<std::mutex> &lock, std::condition_variable &cv,
                        const std::function<bool()> &ready, const std::function<void()> &on_interrupt) {
    constexpr auto signal_check_interval = std::chrono::milliseconds(100);
    while (!cv.wait_for(lock, signal_check_interval, ready)) {
        // Never take the GIL while holding the lock: a Python thread may be waiting for it.
        // While the interpreter shuts down, a thread that takes the GIL is ended mid-call; a daemon
        // thread blocked here just keeps waiting until the process is gone.
        if (interpreter_finalizing()) continue;
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
