// A block of bytes owned by C++ and lent to Python through the buffer protocol, without copying.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace s3tc {

class Buffer {
public:
    // Uninitialised on purpose: every byte is written by a download before Python sees it.
    explicit Buffer(size_t size) : data_(size == 0 ? nullptr : new uint8_t[size]), size_(size) {}
    // Never null, so an empty buffer still gives Python a valid address.
    uint8_t *data() { return data_ ? data_.get() : &empty_; }
    size_t size() const { return size_; }

private:
    std::unique_ptr<uint8_t[]> data_;
    size_t size_;
    uint8_t empty_ = 0;
};

}  // namespace s3tc
