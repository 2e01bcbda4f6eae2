#include "crt_internals.h"

// Item 1: declared here as aws-c-s3's private header declares it.
extern "C" aws_s3_buffer_pool *aws_s3_default_buffer_pool_new(aws_allocator *allocator,
                                                              aws_s3_buffer_pool_config config);

namespace s3tc::crt {

aws_s3_buffer_pool *new_default_buffer_pool(aws_allocator *allocator, aws_s3_buffer_pool_config config) {
    return aws_s3_default_buffer_pool_new(allocator, config);
}

uint64_t part_of_reservation(uint64_t r, uint64_t parts, uint32_t regions) {
    if (r == 0 || parts <= 1) return r;
    const uint64_t spread = parts - 1;  // every part after the first
    if (regions < 2 || spread <= regions) return r;
    const uint64_t i = r - 1;
    const uint64_t region = i % regions;
    const uint64_t step = i / regions;
    const uint64_t size = spread / regions;
    const uint64_t large = spread % regions;  // the first `large` runs hold one part more
    const uint64_t run_start = region < large ? region * (size + 1) : large * (size + 1) + (region - large) * size;
    return 1 + run_start + step;
}

}  // namespace s3tc::crt
