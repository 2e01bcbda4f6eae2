// A ListObjectsV2 response (ListBucketResult) read in one pass over its bytes, without building an XML tree:
// a 1,000-key page is about 215 KB, and the tree's allocations and name lookups were most of the native time
// of a listing of millions of keys. Only what S3 sends is read: elements, attributes (skipped), character and
// entity references, CDATA, comments and the XML declaration; anything else is refused as malformed.
#pragma once

#include "object_info.h"

#include <string>
#include <string_view>
#include <vector>

namespace s3tc {

struct ListResult {
    std::vector<ObjectInfo> objects;      // every Contents, in the document's order
    std::vector<std::string> prefixes;    // every CommonPrefixes/Prefix
    std::string next_continuation_token;  // "" when none
    bool truncated = false;               // IsTruncated was "true"
};

// Fills `result` from `document`; false when it is not a well-formed ListBucketResult.
bool parse_list_result(std::string_view document, ListResult &result);

}  // namespace s3tc
