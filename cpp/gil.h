// The GIL around native calls that block: the one place that releases it and takes it back.
#pragma once

#include <pybind11/pybind11.h>

namespace s3tc {

// Releases the GIL for its scope, for a call that waits (on the network, on the CRT, on a queue), and takes it
// back at the end of the scope, whether the scope ends normally or by an exception. Every blocking call of the
// module releases the GIL through this type, never through py::gil_scoped_release.
//
// A daemon thread may still be waiting here when the interpreter exits, and its wait may end (the request
// completes, fails or is cut off) while the interpreter finalizes. CPython then ends any thread but the
// finalizing one that takes the GIL: 3.9-3.13 call pthread_exit, a forced unwind, which aborts the process
// ("terminate called without an active exception") when it leaves a destructor, such as
// py::gil_scoped_release's; 3.14 blocks the thread forever. So such a thread never takes the GIL back: it is
// parked, asleep until the process ends, as the daemon thread it is would be. Finalization may also begin
// between that check and the taking; the forced unwind is then caught where it starts, inside this type, and
// the thread is parked too. Letting it unwind instead would run the bindings' cleanups (Py_DECREF of arguments,
// PyBuffer_Release of a caller's buffer) without the GIL.
// The thread that runs the finalization itself (a __del__ may read or write) takes the GIL back as usual.
class GilReleased {
public:
    GilReleased();
    ~GilReleased();
    GilReleased(const GilReleased &) = delete;
    GilReleased &operator=(const GilReleased &) = delete;

private:
    PyThreadState *saved_;
};

// Whether the interpreter has begun to finalize. Safe without the GIL.
bool interpreter_finalizing();

// For a thread that must never touch Python again: sleeps until the process ends.
[[noreturn]] void park_forever();

// Notes, from an atexit callback, which thread runs the interpreter's exit (and so its finalization).
// Called once, with the GIL, when the module is imported.
void watch_interpreter_exit();

}  // namespace s3tc
