#include "profiler_span.h"

namespace py = pybind11;

namespace s3tc {
namespace {

// The span's Python code runs the signal handlers of a Ctrl-C that came before the wait (or, for __exit__, after
// its last check): the KeyboardInterrupt they raise is the wait's, not the span's. Dropped, the Ctrl-C would be
// lost, its handler having run; simulate it again instead, for the wait (or the next bytecode) to raise it.
void keep_interrupt(const py::error_already_set &error) {
    if (error.matches(PyExc_KeyboardInterrupt)) PyErr_SetInterrupt();
}

}  // namespace

ProfilerSpan::ProfilerSpan(const std::string &operation) {
    // Only a process that imported torch's profiler can be profiling; never import it here.
    static PyObject *const module_name = PyUnicode_InternFromString("torch.autograd.profiler");  // kept forever
    PyObject *module = PyImport_GetModule(module_name);
    if (module == nullptr) {
        PyErr_Clear();
        return;
    }
    py::object profiler = py::reinterpret_steal<py::object>(module);
    try {
        if (!py::getattr(profiler, "_is_profiler_enabled", py::bool_(false)).cast<bool>()) return;
        py::object record = profiler.attr("record_function")("s3torchconnector." + operation);
        record.attr("__enter__")();
        record_ = std::move(record);
    } catch (py::error_already_set &error) {
        keep_interrupt(error);  // else torch changed its profiler's API: go on without the span
    }
}

ProfilerSpan::~ProfilerSpan() {
    if (!record_) return;
    py::error_scope pending;  // an exception leaving the wait (Ctrl-C) stays as it was
    try {
        record_.attr("__exit__")(py::none(), py::none(), py::none());
    } catch (py::error_already_set &error) {
        keep_interrupt(error);
    }
}

}  // namespace s3tc
