#include "errors.h"

#include "runtime.h"
#include "xml.h"

#include <aws/common/error.h>
#include <aws/io/io.h>

namespace py = pybind11;

namespace s3tc {
namespace {

py::object &exception_factory() {
    // Leaked on purpose: it must outlive any exception raised while the interpreter shuts down.
    static py::object *factory = new py::object();
    return *factory;
}

py::dict facts_of(const S3Error &error) {
    py::dict facts;
    facts["operation"] = error.operation;
    facts["bucket"] = error.bucket;
    facts["key"] = error.key;
    facts["endpoint"] = error.endpoint;
    facts["status"] = error.status;
    facts["code"] = error.code;
    facts["server_message"] = error.server_message;
    facts["request_id"] = error.request_id;
    facts["crt_error"] = error.crt_error != 0 ? std::string(aws_error_name(error.crt_error)) : std::string();
    facts["crt_error_text"] = error.crt_error != 0 ? std::string(aws_error_str(error.crt_error)) : std::string();
    facts["retryable"] = !retrying_cannot_help(error.crt_error);
    facts["max_attempts"] = error.max_attempts;
    facts["ca_bundle"] = trusted_ca_bundle();
    return facts;
}

}  // namespace

S3Error::S3Error(const OperationContext &context, const Outcome &outcome)
    : operation(context.operation),
      bucket(context.bucket),
      key(context.key),
      endpoint(context.endpoint),
      status(outcome.status),
      request_id(outcome.request_id),
      crt_error(outcome.error_code),
      max_attempts(context.max_attempts),
      summary_(context.operation + " of s3://" + context.bucket + "/" + context.key + " failed") {
    if (outcome.status >= 300 && !outcome.body.empty()) {
        XmlElement root;
        if (parse_xml(outcome.body, {"Error"}, root)) {
            code = root.child_text("Code");
            server_message = root.child_text("Message");
            if (request_id.empty()) request_id = root.child_text("RequestId");
        }
    }
}

bool retrying_cannot_help(int error_code) {
    return error_code == AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE ||
           error_code == AWS_IO_TLS_ERROR_DEFAULT_TRUST_STORE_NOT_FOUND;
}

void register_s3_exception(py::module_ &module) {
    module.def(
        "set_exception_factory", [](py::object factory) { exception_factory() = std::move(factory); },
        py::arg("factory"));

    py::register_exception_translator([](std::exception_ptr raised) {
        try {
            if (raised) std::rethrow_exception(raised);
        } catch (const S3Error &error) {
            if (!exception_factory()) {
                PyErr_SetString(PyExc_RuntimeError, error.what());
                return;
            }
            try {
                py::object instance = exception_factory()(facts_of(error));
                PyErr_SetObject(reinterpret_cast<PyObject *>(Py_TYPE(instance.ptr())), instance.ptr());
            } catch (py::error_already_set &failed) {
                failed.restore();  // the factory's own error, as it raised it
            }
        }
    });
}

}  // namespace s3tc
