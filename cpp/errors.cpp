#include "errors.h"

#include "runtime.h"
#include "xml.h"

#include <aws/auth/auth.h>
#include <aws/common/error.h>
#include <aws/http/http.h>
#include <aws/io/io.h>
#include <aws/s3/s3.h>

namespace py = pybind11;

namespace s3tc {
namespace {

std::string uri_of(const OperationContext &context) {
    std::string uri = "s3://" + context.bucket;
    if (!context.key.empty()) {
        uri += "/" + context.key;
    }
    return uri;
}

// S3 answers HEAD requests and some errors without a body; name the error from the status alone.
std::string code_from_status(int status, const OperationContext &context) {
    switch (status) {
        case 301: return "PermanentRedirect";
        case 400: return "BadRequest";
        case 403: return "AccessDenied";
        case 404: return context.key.empty() ? "NoSuchBucket" : "NoSuchKey";
        case 412: return "PreconditionFailed";
        case 416: return "InvalidRange";
        case 500: return "InternalError";
        case 503: return "SlowDown";
        default: return "HTTP" + std::to_string(status);
    }
}

std::string explain_service_error(const std::string &code, const std::string &server_message,
                                  const OperationContext &context) {
    const std::string uri = uri_of(context);
    if (code == "NoSuchKey") return uri + " does not exist";
    if (code == "NoSuchBucket") return "bucket '" + context.bucket + "' does not exist";
    if (code == "AccessDenied")
        return context.operation + " of " + uri +
               " was denied; check the credentials and that the bucket policy allows it";
    if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch")
        return "the credentials were rejected for " + uri +
               "; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the profile";
    if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" ||
        code == "IllegalLocationConstraintException")
        return "bucket '" + context.bucket + "' is not in the configured region; pass the bucket's region";
    if (code == "InvalidRange") return "the requested range is outside " + uri;
    if (code == "PreconditionFailed") return uri + " changed while it was being read";
    std::string text = context.operation + " of " + uri + " failed";
    if (!server_message.empty()) text += ": " + server_message;
    return text;
}

bool is_credentials_error(int error_code) {
    return error_code >= static_cast<int>(AWS_ERROR_ENUM_BEGIN_RANGE(AWS_C_AUTH_PACKAGE_ID)) &&
           error_code < static_cast<int>(AWS_ERROR_ENUM_END_RANGE(AWS_C_AUTH_PACKAGE_ID));
}

std::string explain_crt_error(int error_code, const OperationContext &context) {
    const std::string where = context.endpoint.empty() ? std::string("S3") : context.endpoint;
    switch (error_code) {
        case AWS_IO_SOCKET_CONNECTION_REFUSED:
            return "could not connect to " + where + ": connection refused; check the endpoint";
        case AWS_IO_DNS_INVALID_NAME:
        case AWS_IO_DNS_QUERY_FAILED:
        case AWS_IO_DNS_NO_ADDRESS_FOR_HOST:
            return "could not resolve the host of " + where + "; check the endpoint and the region";
        case AWS_IO_SOCKET_TIMEOUT: return "timed out talking to " + where;
        case AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE:
        case AWS_IO_TLS_ERROR_DEFAULT_TRUST_STORE_NOT_FOUND: {
            const std::string bundle = trusted_ca_bundle();
            const std::string text = "the TLS handshake with " + where +
                                     " failed: its certificate is not trusted or is not for that host name; ";
            if (bundle.empty()) return text + "if it uses a private certificate authority, set AWS_CA_BUNDLE";
            return text + "check that AWS_CA_BUNDLE (" + bundle +
                   ") holds its certificate authority and that the endpoint names a host its certificate covers";
        }
        case AWS_ERROR_HTTP_CHANNEL_THROUGHPUT_FAILURE:
            return "the connection to " + where + " stalled during " + context.operation + " of " + uri_of(context) +
                   ": it moved fewer than S3ClientConfig.min_throughput_bytes_per_second for "
                   "stall_timeout_seconds";
        case AWS_ERROR_S3_CANCELED: return context.operation + " of " + uri_of(context) + " was cancelled";
        case AWS_ERROR_S3_OBJECT_MODIFIED:
            return uri_of(context) + " was overwritten while it was being read; read it again";
        case AWS_ERROR_S3_RESPONSE_CHECKSUM_MISMATCH:
            return "the bytes of " + uri_of(context) + " did not match their checksum";
        case AWS_ERROR_S3_MISSING_ETAG:
        case AWS_ERROR_S3_MISSING_CONTENT_RANGE_HEADER:
        case AWS_ERROR_S3_INVALID_CONTENT_RANGE_HEADER:
        case AWS_ERROR_S3_MISSING_CONTENT_LENGTH_HEADER:
        case AWS_ERROR_S3_INVALID_CONTENT_LENGTH_HEADER:
        case AWS_ERROR_S3_MISSING_UPLOAD_ID:
            return where + " did not answer " + context.operation + " like S3 does; is the endpoint an S3 API?";
        case AWS_ERROR_HTTP_RESPONSE_FIRST_BYTE_TIMEOUT:
        case AWS_ERROR_HTTP_CONNECTION_CLOSED:
        case AWS_ERROR_HTTP_SERVER_CLOSED: return "the connection to " + where + " failed";
        default: break;
    }
    if (is_credentials_error(error_code)) {
        return "no usable AWS credentials were found (environment, profile, web identity, container or "
               "instance metadata); configure credentials, or use unsigned access for public buckets";
    }
    return context.operation + " of " + uri_of(context) + " failed";
}

// "; gave up after up to 3 attempts" ("1 attempt" when retries are off).
std::string gave_up_after(int max_attempts) {
    return "; gave up after up to " + std::to_string(max_attempts) + (max_attempts == 1 ? " attempt" : " attempts");
}

py::object &s3_exception_type() {
    // Leaked on purpose: it must outlive any exception raised while the interpreter shuts down.
    static py::object *type = new py::object();
    return *type;
}

}  // namespace

bool retrying_cannot_help(int error_code) {
    return error_code == AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE ||
           error_code == AWS_IO_TLS_ERROR_DEFAULT_TRUST_STORE_NOT_FOUND;
}

S3Error make_s3_error(const OperationContext &context, const Outcome &given) {
    Outcome outcome = given;
    // When retries run out on throttling or server errors the CRT reports its own code and no status.
    if (outcome.status == 0 && outcome.error_code == AWS_ERROR_S3_SLOW_DOWN) outcome.status = 503;
    if (outcome.status == 0 && outcome.error_code == AWS_ERROR_S3_INTERNAL_ERROR) outcome.status = 500;
    S3Error error;
    error.status = outcome.status;
    error.bucket = context.bucket;
    error.key = context.key;
    error.operation = context.operation;
    error.request_id = outcome.request_id;

    if (outcome.status >= 300) {
        XmlElement root;
        std::string server_message;
        if (!outcome.body.empty() && parse_xml(outcome.body, {"Error"}, root)) {
            error.code = root.child_text("Code");
            server_message = root.child_text("Message");
            if (error.request_id.empty()) error.request_id = root.child_text("RequestId");
        }
        if (error.code.empty()) error.code = code_from_status(outcome.status, context);
        // "NoSuchKey: s3://b/k does not exist (HTTP 404, request id X)";
        // "SlowDown: ... (HTTP 503, request id X; gave up after up to 10 attempts)".
        error.message = error.code + ": " + explain_service_error(error.code, server_message, context) + " (HTTP " +
                        std::to_string(outcome.status);
        if (!error.request_id.empty()) error.message += ", request id " + error.request_id;
        if (context.max_attempts > 0 &&
            (outcome.error_code == AWS_ERROR_S3_SLOW_DOWN || outcome.error_code == AWS_ERROR_S3_INTERNAL_ERROR)) {
            error.message += gave_up_after(context.max_attempts);
        }
        error.message += ")";
        return error;
    }

    error.code = aws_error_name(outcome.error_code);
    error.message =
        error.code + ": " + explain_crt_error(outcome.error_code, context) + " (" + aws_error_str(outcome.error_code);
    // Retrying cannot help these, so the CRT does not: the attempt count would mislead.
    const bool retried = !is_credentials_error(outcome.error_code) && outcome.error_code != AWS_ERROR_S3_CANCELED &&
                         outcome.error_code != AWS_ERROR_S3_OBJECT_MODIFIED &&
                         !retrying_cannot_help(outcome.error_code);
    if (context.max_attempts > 0 && retried) {
        error.message += gave_up_after(context.max_attempts);
    }
    error.message += ")";
    return error;
}

void register_s3_exception(py::module_ &module) {
    py::object base = py::reinterpret_borrow<py::object>(PyExc_Exception);
    PyObject *type = PyErr_NewExceptionWithDoc(
        "s3torchconnector._native.S3Exception",
        "An S3 request failed. Attributes: code (S3 error code such as 'NoSuchKey'), status (HTTP status, 0 if "
        "none), bucket, key, request_id, operation.",
        base.ptr(), nullptr);
    if (type == nullptr) throw py::error_already_set();
    s3_exception_type() = py::reinterpret_steal<py::object>(type);
    module.attr("S3Exception") = s3_exception_type();

    py::register_exception_translator([](std::exception_ptr raised) {
        try {
            if (raised) std::rethrow_exception(raised);
        } catch (const S3Error &error) {
            py::object instance = s3_exception_type()(error.message);
            instance.attr("code") = error.code;
            instance.attr("status") = error.status;
            instance.attr("bucket") = error.bucket;
            instance.attr("key") = error.key;
            instance.attr("request_id") = error.request_id;
            instance.attr("operation") = error.operation;
            PyErr_SetObject(s3_exception_type().ptr(), instance.ptr());
        }
    });
}

}  // namespace s3tc
