// A received part's bytes, still in the CRT's part buffer, held past the body callback.
#pragma once

#include <aws/s3/s3_buffer_pool.h>

#include <cstdint>
#include <utility>

namespace s3tc {

// Keeps the CRT's buffer of one part alive (a reference on its pool ticket), so the bytes can be
// copied out by a thread of ours instead of the CRT's delivery thread. Release it before the
// client that owns the pool goes away.
class PartBuffer {
public:
    PartBuffer(uint64_t offset, aws_byte_cursor bytes, aws_s3_buffer_ticket *ticket)
        : offset_(offset), bytes_(bytes), ticket_(aws_s3_buffer_ticket_acquire(ticket)) {}
    ~PartBuffer() { reset(); }
    PartBuffer(PartBuffer &&other) noexcept
        : offset_(other.offset_), bytes_(other.bytes_), ticket_(std::exchange(other.ticket_, nullptr)) {}
    PartBuffer &operator=(PartBuffer &&) = delete;
    PartBuffer(const PartBuffer &) = delete;
    PartBuffer &operator=(const PartBuffer &) = delete;

    uint64_t offset() const { return offset_; }  // object offset of the first byte
    aws_byte_cursor bytes() const { return bytes_; }

    // Hands the buffer back to the CRT's pool.
    void reset() {
        if (ticket_ != nullptr) aws_s3_buffer_ticket_release(ticket_);
        ticket_ = nullptr;
    }

private:
    uint64_t offset_;
    aws_byte_cursor bytes_;
    aws_s3_buffer_ticket *ticket_;
};

}  // namespace s3tc
