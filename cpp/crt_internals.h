// Everything this module copies from the CRT's private code, or relies on in its unpromised behaviour, each checked
// against one aws-c-s3 version (the one in the pinned awscrt source distribution, cmake/awscrt.pin). Another version
// may differ in any item: CMake refuses it (cmake/AwsCrt.cmake) unless S3TC_ALLOW_OTHER_CRT is set, which builds the
// module with the items that only cost speed switched off (S3TC_CRT_CHECKED=0) and says so.
//
// The items, and where each is used:
//  1. aws_s3_default_buffer_pool_new: exported, but declared in the private s3_default_buffer_pool.h, which an
//     installed CRT does not ship (landing_pool.cpp wraps that pool).
//  2. The order in which a GET reserves its part buffers: s_next_part_number_synced in s3_auto_ranged_get.c
//     (part_of_reservation below; landing_pool.cpp hands each reservation its part's slice). Wrong, it costs the
//     in-place landing, not correctness: a part outside its slice closes the pool for that download (download.cpp).
//     tests/faults/test_in_place.py fails if the order differs.
//  3. How the CRT sizes its connection pool: s_throughput_per_connection_gbps and g_min_num_connections in
//     s3_client.c (client.cpp sizes requests within what the pool gives).
//  4. object_size_hint is not set: with it, the single-part path the CRT picks reads response headers that never
//     came when its one request fails or is cancelled (a crash on a CRT thread; get.cpp).
//  5. Telemetry: every attempt's callback runs before the meta request's finish callback, and outside the CRT's
//     locks (request.cpp cancels from it and names the last failed attempt's response).
//  6. The two source changes of cmake/PatchAwsCrt.cmake.
#pragma once

#include <aws/s3/s3_buffer_pool.h>

#include <cstdint>

// The aws-c-s3 release the items were checked against. cmake/AwsCrt.cmake reads it from this line.
#define S3TC_CHECKED_AWS_C_S3_VERSION "1.3.0"

#ifndef S3TC_CRT_CHECKED
#define S3TC_CRT_CHECKED 1
#endif

namespace s3tc::crt {

// Whether the CRT built against is the checked one (else item 2's in-place landing is off).
constexpr bool checked = S3TC_CRT_CHECKED != 0;

// Item 1.
aws_s3_buffer_pool *new_default_buffer_pool(aws_allocator *allocator, aws_s3_buffer_pool_config config);

// Item 2: the part (0-based) the CRT reserves its r-th buffer of a download for. It asks for the first part alone
// (which tells the object's size); when parts may arrive out of order it cuts the rest into `regions` runs and takes
// one part from each run in turn, so that its connections read far-apart places.
uint64_t part_of_reservation(uint64_t r, uint64_t parts, uint32_t regions);

// Item 3.
constexpr double gbps_per_connection = 100.0 / 250;
constexpr uint32_t min_connections = 10;

}  // namespace s3tc::crt
