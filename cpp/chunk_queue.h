// Stream mode of a download: received parts queued for a reader that takes them in order.
#pragma once

#include "buffer.h"
#include "buffer_recycler.h"
#include "lending_budget.h"

#include <aws/common/byte_buf.h>
#include <aws/s3/s3_buffer_pool.h>

#include <cstdint>
#include <deque>
#include <memory>

namespace s3tc {

// A received piece of the body, not yet handed to the caller.
struct Chunk {
    uint64_t offset;  // object offset of data[0]
    std::shared_ptr<Buffer> data;
};

// Appends a copy of `data`, the bytes at object offset `offset`, in a buffer from `recycler` when there is one; an
// AWS error code if memory ran out, else 0.
int append_copy(std::deque<Chunk> &chunks, uint64_t offset, aws_byte_cursor data, BufferRecycler *recycler = nullptr);

// The parts a stream received and its reader has not taken yet; the read window bounds how many. Each waits in the
// CRT's buffer it arrived in while the lending budget allows (no copy on the CRT's delivery thread), else in a copy.
// Reached only under the download's lock.
struct ChunkQueue {
    std::deque<Chunk> chunks;  // only the reader takes chunks out (GetStream::readinto, next_chunk)
    bool reading = false;      // a readinto() is copying out of chunks, the lock let go during its copies
    std::shared_ptr<BufferRecycler> recycler;  // the stream's copy buffers, reused (null for a whole download)

    // Queues the part `data` at object offset `offset`, received in the buffer `ticket` holds (null when the CRT
    // gave no buffer of its own); an AWS error code if memory ran out, else 0.
    int append(uint64_t offset, aws_byte_cursor data, aws_s3_buffer_ticket *ticket, LendingBudget *lending);
};

}  // namespace s3tc
