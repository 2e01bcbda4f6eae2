#include "redact.h"

#include <algorithm>
#include <cctype>

namespace s3tc {
namespace {

// Names whose values grant or replay access. The access key id is not secret, and is kept: it says
// which credentials were used.
const char *const secret_names[] = {"x-amz-security-token", "signature"};

bool same_letters(const std::string &text, size_t at, const char *name, size_t length) {
    for (size_t i = 0; i < length; ++i) {
        if (std::tolower(static_cast<unsigned char>(text[at + i])) != name[i]) return false;
    }
    return true;
}

bool ends_value(char c) {
    return std::isspace(static_cast<unsigned char>(c)) || c == '&' || c == ',' || c == ';' || c == '"';
}

}  // namespace

void redact_credentials(std::string &text) {
    static const std::string redacted = "<redacted>";
    for (const char *name : secret_names) {
        const size_t length = std::char_traits<char>::length(name);
        for (size_t at = 0; at + length < text.size(); ++at) {
            // A name at a word start, then ':' or '=' (a header or a query parameter / auth field).
            if ((at > 0 && (std::isalnum(static_cast<unsigned char>(text[at - 1])) || text[at - 1] == '-')) ||
                !same_letters(text, at, name, length)) {
                continue;
            }
            size_t value = at + length;
            if (text[value] != ':' && text[value] != '=') continue;
            ++value;
            while (value < text.size() && text[value] == ' ') ++value;
            size_t end = value;
            while (end < text.size() && !ends_value(text[end])) ++end;
            if (end == value) continue;
            text.replace(value, end - value, redacted);
            at = value + redacted.size();
        }
    }
}

}  // namespace s3tc
