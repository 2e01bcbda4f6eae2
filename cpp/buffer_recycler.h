// Keeps the chunk buffers a streaming download is done with, for its next parts.
#pragma once

#include "buffer.h"
#include "fork.h"

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace s3tc {

// A stream copies each part the pool does not lend it (LandingPool::lend) into a new buffer, which its reader drops
// once it has copied the bytes out. Fresh
// memory costs a page fault for every 4 KiB the CRT's delivery thread writes (the kernel zeroes and charges each
// page), which slowed a stream down more than the copy itself; a dropped buffer of the usual size comes back here
// instead, and the next part reuses its warm pages. At most `keep` buffers wait, so a stream holds no more than its
// read window; they go with the last reference to the recycler (the download and its outstanding buffers).
class BufferRecycler : public std::enable_shared_from_this<BufferRecycler> {
public:
    BufferRecycler(size_t size, size_t keep) : size_(size), keep_(keep) {}

    // A buffer of `size` bytes, uninitialised; one of `size()` bytes comes back here when its last holder drops it.
    std::shared_ptr<Buffer> take(size_t size) {
        if (size != size_) return std::make_shared<Buffer>(size);
        std::unique_ptr<Buffer> buffer;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!free_.empty()) {
                buffer = std::move(free_.back());
                free_.pop_back();
            }
        }
        if (!buffer) buffer = std::make_unique<Buffer>(size);
        return std::shared_ptr<Buffer>(buffer.release(), [self = shared_from_this()](Buffer *dropped) {
            self->give_back(std::unique_ptr<Buffer>(dropped));
        });
    }

private:
    void give_back(std::unique_ptr<Buffer> buffer) {
        // In a forked child the mutex may have been held by a parent's thread at the fork (fork.h, rule 1): the
        // buffer is just freed.
        if (!made_in_.is_current()) return;
        std::lock_guard<std::mutex> lock(mutex_);
        if (free_.size() < keep_) free_.push_back(std::move(buffer));
    }

    const size_t size_;
    const size_t keep_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<Buffer>> free_;
    MadeInProcess made_in_;
};

}  // namespace s3tc
