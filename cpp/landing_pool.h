// Receiving parts in place: the client's buffer pool hands the CRT, for a download that has a destination,
// the slice of the destination each part belongs in. The part is received there: no pool buffer, no copy.
#pragma once

#include "lending_budget.h"

#include <aws/s3/s3_buffer_pool.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

namespace s3tc {

// The destination of one download's parts, and how the CRT cuts its object range into parts: part i (0-based)
// starts at object offset first_part_start + i * part_size and the range ends at `end`.
struct LandingSite {
    uint8_t *destination = nullptr;  // object offset `base` is destination[0]
    uint64_t base = 0;
    uint64_t end = 0;  // object offset one past the destination's last byte, and the range's
    uint64_t first_part_start = 0;
    uint64_t part_size = 0;
    // How many runs of parts the CRT spreads a download delivered out of order across (its connections); 1 when
    // it asks for parts in object order.
    uint32_t regions = 1;
};

// The slices of one download's destination handed to the CRT. The CRT writes into a slice until it releases
// its ticket, so the destination must outlive every slice: wait_released() says when.
class Slices {
public:
    // The part at object offset `start` went to a slice.
    void handed(uint64_t start);
    void released();
    // Whether the part at object offset `start` was handed a slice.
    bool was_handed(uint64_t start) const;
    // Blocks until the CRT released every slice (short once the download is cancelled or finished).
    void wait_released();

private:
    mutable std::mutex mutex_;
    std::condition_variable all_released_;
    std::set<uint64_t> handed_;
    int outstanding_ = 0;
};

// Wraps the CRT's default pool, which serves every reservation that is not a part of a registered destination.
class LandingPool {
public:
    // aws_s3_client_config.buffer_pool_factory_fn; user_data is the LandingPool ** the new pool is written to.
    static aws_s3_buffer_pool *make(aws_allocator *allocator, aws_s3_buffer_pool_config config, void *user_data);

    // A reference that keeps the pool alive (the CRT client holds one of its own until it is destroyed).
    void acquire();
    void release();

    // From now on, parts of `meta_request` that lie whole within `site` are received there, into `slices`.
    void open(aws_s3_meta_request *meta_request, const LandingSite &site, std::shared_ptr<Slices> slices);
    // No more slices for `meta_request` (its destination is going away, or a part did not land in its slice).
    void close(aws_s3_meta_request *meta_request);
    // `meta_request` finished: it reserves nothing more.
    void forget(aws_s3_meta_request *meta_request);

    // What streams' readers may hold of the pool's buffers: a quarter of its memory limit.
    LendingBudget &lending() { return lending_; }

private:
    struct Entry {
        uint64_t reserved = 0;  // buffers reserved so far: the index of the next part
        bool open = false;
        LandingSite site;
        std::shared_ptr<Slices> slices;
    };

    LandingPool(aws_allocator *allocator, aws_s3_buffer_pool *fallback, size_t memory_limit);
    ~LandingPool();
    static aws_future_s3_buffer_ticket *reserve(aws_s3_buffer_pool *pool, aws_s3_buffer_pool_reserve_meta meta);
    static aws_s3_buffer_pool *fallback_of(aws_s3_buffer_pool *pool);
    // The slice of the next part of `meta`'s request, or nullptr when that part has no slice.
    aws_s3_buffer_ticket *slice_for(const aws_s3_buffer_pool_reserve_meta &meta);

    aws_allocator *allocator_;
    aws_s3_buffer_pool *fallback_;
    aws_s3_buffer_pool pool_;
    std::mutex mutex_;
    std::unordered_map<aws_s3_meta_request *, Entry> entries_;
    LendingBudget lending_;
};

}  // namespace s3tc
