// A body received whole while the caller reads it in pieces.
#pragma once

#include "buffer.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

namespace s3tc {

// Whole mode, a read smaller than the rest: the rest is received in one buffer, then read from it.
class StagedBody {
public:
    explicit operator bool() const { return buffer_ != nullptr; }
    void stage(std::shared_ptr<Buffer> buffer) {
        buffer_ = std::move(buffer);
        used_ = 0;
    }
    size_t unread() const { return buffer_ ? buffer_->size() - used_ : 0; }
    // Copies up to `size` unread bytes to `out`; how many it copied.
    size_t take(uint8_t *out, size_t size) {
        const size_t n = std::min(size, unread());
        if (n > 0) std::memcpy(out, buffer_->data() + used_, n);
        used_ += n;
        return n;
    }
    void clear() { buffer_.reset(); }

private:
    std::shared_ptr<Buffer> buffer_;
    size_t used_ = 0;
};

}  // namespace s3tc
