#include "gil.h"

#include <atomic>
#include <chrono>
#include <thread>

#ifdef __GLIBCXX__
#include <cxxabi.h>
#endif

namespace py = pybind11;

namespace s3tc {
namespace {

// The thread that ran Python's atexit callbacks: the interpreter's finalization follows in that thread.
std::atomic<unsigned long> exiting_thread{0};

bool this_thread_finalizes() { return PyThread_get_thread_ident() == exiting_thread.load(); }

// Out of line and never inlined: the forced unwind must meet this function's handler, whatever the caller is.
[[gnu::noinline]] void take_back(PyThreadState *saved) {
    if (interpreter_finalizing() && !this_thread_finalizes()) park_forever();
#ifdef __GLIBCXX__
    try {
        PyEval_RestoreThread(saved);
    } catch (abi::__forced_unwind &) {
        // Finalization began after the check above, and CPython ended this thread as it took the GIL. Never
        // leaving this handler, the thread does not unwind (nor end, which the process's exit will see to).
        park_forever();
    }
#else
    PyEval_RestoreThread(saved);
#endif
}

}  // namespace

GilReleased::GilReleased() : saved_(PyEval_SaveThread()) {}

GilReleased::~GilReleased() { take_back(saved_); }

bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

void park_forever() {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
}

void watch_interpreter_exit() {
    py::module_::import("atexit").attr("register")(
        py::cpp_function([] { exiting_thread.store(PyThread_get_thread_ident()); }));
}

}  // namespace s3tc
