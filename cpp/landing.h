// Landing mode of a download: the rest of the body goes to one destination the caller gave, part by part.
#pragma once

#include "chunk_queue.h"
#include "landing_pool.h"
#include "part_buffer.h"

#include <cstdint>
#include <deque>
#include <map>
#include <memory>

namespace s3tc {

// The destination of the rest of a body, and what has reached it. Parts land in any order: received in place (a
// slice of the destination the pool handed the CRT), or copied in by a thread of ours from the CRT's buffer.
// Reached only under the download's lock.
struct Landing {
    uint8_t *destination = nullptr;  // owned by the caller
    uint64_t size = 0;
    uint64_t base = 0;  // object offset of destination[0]

    // Parts for the destination, still in the CRT's buffers: a thread of ours copies them in (the caller's, waiting,
    // or the stream's lander), which leaves the CRT's one delivery thread free for the next part.
    std::deque<PartBuffer> to_copy;
    int copying = 0;  // parts taken from to_copy whose bytes are still being copied
    // Object ranges [start, end) already in the destination, merged.
    std::map<uint64_t, uint64_t> landed;
    // The slices of the destination the pool handed out (null when the pool receives none of its parts).
    std::shared_ptr<Slices> slices;
    // Parts that arrived outside their place while their place was a slice the CRT could still be writing (only if
    // the pool's count of parts went astray): kept aside until every slice is released.
    std::deque<Chunk> misplaced;

    // Where object offset `offset` goes.
    uint8_t *place_of(uint64_t offset) const { return destination + (offset - base); }
    // Whether the object range [offset, offset + length) lies within the destination.
    bool holds(uint64_t offset, uint64_t length) const { return offset >= base && offset - base + length <= size; }
    // Whether every byte of the object range [start, end) is in the destination.
    bool has_landed(uint64_t start, uint64_t end) const;
    void mark_landed(uint64_t start, uint64_t end);
    // Whether no part waits to be copied in.
    bool idle() const { return to_copy.empty() && copying == 0 && misplaced.empty(); }
};

}  // namespace s3tc
