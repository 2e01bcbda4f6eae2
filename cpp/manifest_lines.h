// The lines of a manifest in the one shape write_manifest writes, read straight into an index file: a
// 10-million-line manifest in seconds, with no Python object per line. Any other line is left to the caller,
// which parses it the exact way (python/s3torchconnector/_listing/manifest.py).
#pragma once

#include "object_index.h"

#include <cstdint>
#include <string_view>

namespace s3tc {

struct SimpleLinesRead {
    size_t end;      // where it stopped: after the last line it took
    uint64_t lines;  // how many it took
};

// Adds each line of `text` from `start` in the shape
//     {"key":"<key>","size":<size>,"etag":"\"<etag>\""}\n
// (a space allowed after each colon and comma; a key of valid UTF-8 with no quote, backslash or control
// character; a size of JSON's integer form below 2**62; an ETag of letters, digits and dashes) to `writer`,
// as an object of `bucket`. Stops before the first line of another shape and before a line with no newline.
SimpleLinesRead add_simple_lines(std::string_view text, size_t start, std::string_view bucket,
                                 ObjectIndexWriter &writer);

}  // namespace s3tc
