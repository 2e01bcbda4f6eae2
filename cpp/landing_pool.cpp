#include "landing_pool.h"

#include "crt_internals.h"

#include <algorithm>
#include <new>

namespace s3tc {
namespace {

// A ticket whose buffer is a slice of a download's destination.
struct SliceTicket {
    aws_s3_buffer_ticket ticket;
    uint8_t *data;
    size_t size;
    std::shared_ptr<Slices> slices;
};

aws_byte_buf claim_slice(aws_s3_buffer_ticket *ticket) {
    auto *slice = static_cast<SliceTicket *>(ticket->impl);
    return aws_byte_buf_from_empty_array(slice->data, slice->size);  // not owned: the CRT frees nothing
}

void destroy_slice(void *impl) {
    auto *slice = static_cast<SliceTicket *>(impl);
    slice->slices->released();
    delete slice;
}

// Filled by name: a CRT that reorders or adds members leaves the others null, not mismatched.
aws_s3_buffer_ticket_vtable make_slice_vtable() {
    aws_s3_buffer_ticket_vtable vtable = {};
    vtable.claim = claim_slice;  // acquire and release null: the ticket's ref count is used
    return vtable;
}
aws_s3_buffer_ticket_vtable slice_vtable = make_slice_vtable();

}  // namespace

void Slices::handed(uint64_t start) {
    std::lock_guard<std::mutex> lock(mutex_);
    handed_.insert(start);
    ++outstanding_;
}

void Slices::released() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--outstanding_ == 0) all_released_.notify_all();
}

bool Slices::was_handed(uint64_t start) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return handed_.count(start) > 0;
}

void Slices::wait_released() {
    std::unique_lock<std::mutex> lock(mutex_);
    all_released_.wait(lock, [this] { return outstanding_ == 0; });
}

aws_s3_buffer_pool *LandingPool::make(aws_allocator *allocator, aws_s3_buffer_pool_config config, void *user_data) {
    aws_s3_buffer_pool *fallback = crt::new_default_buffer_pool(allocator, config);
    if (fallback == nullptr) return nullptr;
    LandingPool *pool;
    try {
        pool = new LandingPool(allocator, fallback, config.memory_limit);
    } catch (const std::bad_alloc &) {
        aws_s3_buffer_pool_release(fallback);
        aws_raise_error(AWS_ERROR_OOM);
        return nullptr;
    }
    *static_cast<LandingPool **>(user_data) = pool;
    return &pool->pool_;
}

LandingPool::LandingPool(aws_allocator *allocator, aws_s3_buffer_pool *fallback, size_t memory_limit)
    : allocator_(allocator), fallback_(fallback), pool_{}, lending_(memory_limit / 4) {
    // Everything but reserving is the default pool's business. Filled by name, as the ticket's.
    static aws_s3_buffer_pool_vtable vtable = [] {
        aws_s3_buffer_pool_vtable made = {};
        made.reserve = reserve;
        made.trim = [](aws_s3_buffer_pool *pool) { aws_s3_buffer_pool_trim(fallback_of(pool)); };
        made.add_special_size = [](aws_s3_buffer_pool *pool, size_t size) {
            return aws_s3_buffer_pool_add_special_size(fallback_of(pool), size);
        };
        made.release_special_size = [](aws_s3_buffer_pool *pool, size_t size) {
            aws_s3_buffer_pool_release_special_size(fallback_of(pool), size);
        };
        made.derive_aligned_buffer_size = [](aws_s3_buffer_pool *pool, uint64_t size) {
            return aws_s3_buffer_pool_derive_aligned_buffer_size(fallback_of(pool), size);
        };
        return made;  // acquire and release null: the pool's ref count is used
    }();
    pool_.vtable = &vtable;
    pool_.impl = this;
    aws_ref_count_init(&pool_.ref_count, this, [](void *self) { delete static_cast<LandingPool *>(self); });
}

LandingPool::~LandingPool() { aws_s3_buffer_pool_release(fallback_); }

void LandingPool::acquire() { aws_s3_buffer_pool_acquire(&pool_); }

void LandingPool::release() { aws_s3_buffer_pool_release(&pool_); }

void LandingPool::open(aws_s3_meta_request *meta_request, const LandingSite &site, std::shared_ptr<Slices> slices) {
    if (!crt::checked) return;  // the reservation order is known only for the checked CRT (crt_internals.h)
    std::lock_guard<std::mutex> lock(mutex_);
    // Only a request the pool counts: one that finished is forgotten, and its address may soon be another's.
    auto found = entries_.find(meta_request);
    if (found == entries_.end()) return;
    Entry &entry = found->second;
    entry.open = true;
    entry.site = site;
    entry.slices = std::move(slices);
}

void LandingPool::close(aws_s3_meta_request *meta_request) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = entries_.find(meta_request);
    if (found != entries_.end()) found->second.open = false;
}

void LandingPool::forget(aws_s3_meta_request *meta_request) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.erase(meta_request);
}

aws_s3_buffer_pool *LandingPool::fallback_of(aws_s3_buffer_pool *pool) {
    return static_cast<LandingPool *>(pool->impl)->fallback_;
}

aws_future_s3_buffer_ticket *LandingPool::reserve(aws_s3_buffer_pool *pool, aws_s3_buffer_pool_reserve_meta meta) {
    auto *self = static_cast<LandingPool *>(pool->impl);
    aws_s3_buffer_ticket *slice = self->slice_for(meta);
    if (slice == nullptr) return aws_s3_buffer_pool_reserve(self->fallback_, meta);
    aws_future_s3_buffer_ticket *future = aws_future_s3_buffer_ticket_new(self->allocator_);
    aws_future_s3_buffer_ticket_set_result_by_move(future, &slice);
    return future;
}

aws_s3_buffer_ticket *LandingPool::slice_for(const aws_s3_buffer_pool_reserve_meta &meta) {
    std::lock_guard<std::mutex> lock(mutex_);
    // Every meta request is counted from its first reservation, so the count names the part even for one whose
    // destination is registered later (after its headers came).
    Entry &entry = entries_[meta.meta_request];
    const uint64_t index = entry.reserved++;
    if (!entry.open) return nullptr;
    const LandingSite &site = entry.site;
    const uint64_t parts = (site.end - site.first_part_start + site.part_size - 1) / site.part_size;
    const uint64_t start =
        site.first_part_start + crt::part_of_reservation(index, parts, site.regions) * site.part_size;
    if (start < site.base || start >= site.end) return nullptr;
    // A size other than the part's says the count went astray (a request made twice): the default pool serves it.
    if (meta.size != std::min(site.part_size, site.end - start)) return nullptr;
    auto *slice = new (std::nothrow) SliceTicket{{}, site.destination + (start - site.base), meta.size, entry.slices};
    if (slice == nullptr) return nullptr;
    slice->ticket.vtable = &slice_vtable;
    slice->ticket.impl = slice;
    aws_ref_count_init(&slice->ticket.ref_count, slice, destroy_slice);
    entry.slices->handed(start);
    return &slice->ticket;
}

}  // namespace s3tc
