// Text between the CRT and C++: byte cursors to and from std::string, and numbers in S3's headers.
#pragma once

#include <aws/common/byte_buf.h>

#include <cstdint>
#include <exception>
#include <string>

namespace s3tc {

// A cursor over `text`'s bytes: valid while `text` lives and is not changed.
inline aws_byte_cursor cursor(const std::string &text) { return aws_byte_cursor_from_array(text.data(), text.size()); }

inline std::string to_string(aws_byte_cursor value) {
    return std::string(reinterpret_cast<const char *>(value.ptr), value.len);
}

// A decimal number such as a Content-Length; 0 when empty or not a number.
inline uint64_t parse_u64(const std::string &text) {
    try {
        return text.empty() ? 0 : std::stoull(text);
    } catch (const std::exception &) {
        return 0;
    }
}

}  // namespace s3tc
