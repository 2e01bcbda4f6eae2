#include "wait.h"

#include "gil.h"

#include <pybind11/pybind11.h>

#include <chrono>
#include <optional>

namespace py = pybind11;

namespace s3tc {
namespace {

unsigned long main_thread_ident = 0;

}  // namespace

void remember_main_thread() {
    main_thread_ident = py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
}

void wait_interruptibly(std::unique_lock<std::mutex> &lock, std::condition_variable &cv,
                        const std::function<bool()> &ready, const std::function<void()> &on_interrupt) {
    // Python runs signal handlers only in its main thread; other threads just wait, and never take
    // the GIL here (a daemon thread that takes it while the interpreter shuts down is ended mid-call).
    if (PyThread_get_thread_ident() != main_thread_ident) {
        cv.wait(lock, ready);
        return;
    }
    constexpr auto signal_check_interval = std::chrono::milliseconds(100);
    while (!cv.wait_for(lock, signal_check_interval, ready)) {
        // Never take the GIL while holding the lock: a Python thread may be waiting for it.
        // While the interpreter shuts down, taking the GIL would end this thread mid-call.
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
