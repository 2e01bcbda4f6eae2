// S3Exception: what failed, where, and what to do about it.
#pragma once

#include <pybind11/pybind11.h>

#include <exception>
#include <string>

namespace s3tc {

// What a finished meta request reported, copied out of the CRT's result.
struct Outcome {
    int error_code = 0;  // CRT error code; 0 on success
    int status = 0;      // HTTP status of the failed (or final) response; 0 when none arrived
    std::string body;    // the error response body, when S3 sent one
    std::string request_id;

    bool ok() const { return error_code == 0; }
};

// The operation a failure belongs to, to name it in the message.
struct OperationContext {
    std::string operation;  // e.g. "GetObject"
    std::string bucket;
    std::string key;
    std::string endpoint;  // where requests went, e.g. "http://127.0.0.1:9000"
    int max_attempts = 0;
};

class S3Error : public std::exception {
public:
    std::string code;
    std::string message;
    int status = 0;
    std::string bucket;
    std::string key;
    std::string request_id;
    std::string operation;

    const char *what() const noexcept override { return message.c_str(); }
};

// Errors the CRT retries although no further attempt can succeed: a certificate that is not trusted now
// will not be on the next attempt, and each refused handshake costs 10-30 s (the TLS library's delay
// against timing attacks): ten attempts took over three minutes to report a wrong CA bundle.
bool retrying_cannot_help(int error_code);

// Builds the S3Error for a failed request; the message says what went wrong and how to fix it.
S3Error make_s3_error(const OperationContext &context, const Outcome &outcome);

// Raised by the native module; `code`, `status`, `bucket`, `key`, `request_id`, `operation` attributes.
void register_s3_exception(pybind11::module_ &module);

}  // namespace s3tc
