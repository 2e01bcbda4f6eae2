#include "profiler_span.h"

namespace py = pybind11;

namespace s3tc {

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
    } catch (py::error_already_set &) {
        // torch changed its profiler's API: go on without the span
    }
}

ProfilerSpan::~ProfilerSpan() {
    if (!record_) return;
    py::error_scope pending;  // an exception leaving the wait (Ctrl-C) stays as it was
    try {
        record_.attr("__exit__")(py::none(), py::none(), py::none());
    } catch (py::error_already_set &) {
    }
}

}  // namespace s3tc
