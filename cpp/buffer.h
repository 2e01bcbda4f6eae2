// A block of bytes owned by C++ and lent to Python through the buffer protocol, without copying.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include <sys/mman.h>

namespace s3tc {

// Asks the kernel to back a large, fresh allocation with huge pages: filling 1 GiB then takes ~500
// page faults instead of ~260,000, which otherwise cost more than the copy itself.
inline void prefer_huge_pages(void *data, size_t size) {
    constexpr size_t huge_page = 2u << 20;
    if (size < 2 * huge_page) return;
    const auto start = (reinterpret_cast<uintptr_t>(data) + huge_page - 1) & ~(huge_page - 1);
    const auto end = (reinterpret_cast<uintptr_t>(data) + size) & ~(huge_page - 1);
    if (end > start) madvise(reinterpret_cast<void *>(start), end - start, MADV_HUGEPAGE);
}

class Buffer {
public:
    // Uninitialised on purpose: every byte is written by a download before Python sees it.
    explicit Buffer(size_t size) : data_(size == 0 ? nullptr : new uint8_t[size]), size_(size) {
        prefer_huge_pages(data_.get(), size);
    }
    // Never null, so an empty buffer still gives Python a valid address.
    uint8_t *data() { return data_ ? data_.get() : &empty_; }
    size_t size() const { return size_; }

private:
    std::unique_ptr<uint8_t[]> data_;
    size_t size_;
    uint8_t empty_ = 0;
};

}  // namespace s3tc
