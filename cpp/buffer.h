// A block of bytes lent to Python through the buffer protocol, without copying: owned by C++, or borrowed from
// an owner that keeps it alive (a part the CRT received, still in its pool's buffer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace s3tc {

class Buffer {
public:
    // Uninitialised on purpose: every byte is written by a download before Python sees it.
    explicit Buffer(size_t size) : owned_(size == 0 ? nullptr : new uint8_t[size]), data_(owned_.get()), size_(size) {}
    // `size` bytes at `data`, valid as long as `owner` lives.
    Buffer(uint8_t *data, size_t size, std::shared_ptr<void> owner)
        : data_(data), size_(size), owner_(std::move(owner)) {}
    // Never null, so an empty buffer still gives Python a valid address.
    uint8_t *data() { return data_ ? data_ : &empty_; }
    size_t size() const { return size_; }
    // Whether the bytes belong to an owner other than this buffer.
    bool borrowed() const { return owner_ != nullptr; }

private:
    std::unique_ptr<uint8_t[]> owned_;
    uint8_t *data_;
    size_t size_;
    std::shared_ptr<void> owner_;
    uint8_t empty_ = 0;
};

}  // namespace s3tc
