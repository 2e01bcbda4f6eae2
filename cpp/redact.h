// Keeps credentials out of log lines: the CRT logs what it signs (canonical requests, headers).
#pragma once

#include <string>

namespace s3tc {

// Replaces, in place, the values of session tokens and request signatures (as headers or query
// parameters, any case) with "<redacted>". Everything else stays as it was.
void redact_credentials(std::string &text);

}  // namespace s3tc
