// S3Error: the facts of a failed request, for Python to explain.
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

// A failed request, as raw facts: s3torchconnector/s3exception.py names it, picks its Python class and writes
// its message (registered through set_exception_factory), so the rules live in one place.
class S3Error : public std::exception {
public:
    S3Error(const OperationContext &context, const Outcome &outcome);

    std::string operation;
    std::string bucket;
    std::string key;  // for a listing, its prefix
    std::string endpoint;
    int status = 0;
    std::string code;            // S3's error code from the response body; "" when none came
    std::string server_message;  // S3's message from the response body
    std::string request_id;
    int crt_error = 0;
    int max_attempts = 0;

    const char *what() const noexcept override { return summary_.c_str(); }

private:
    std::string summary_;
};

// Errors the CRT retries although no further attempt can succeed: a certificate that is not trusted now
// will not be on the next attempt, and each refused handshake costs 10-30 s (the TLS library's delay
// against timing attacks): ten attempts took over three minutes to report a wrong CA bundle.
bool retrying_cannot_help(int error_code);

// Binds set_exception_factory(callable): the callable takes a dict of an S3Error's facts and returns the
// exception to raise. Until it is set, an S3Error is raised as a RuntimeError.
void register_s3_exception(pybind11::module_ &module);

}  // namespace s3tc
