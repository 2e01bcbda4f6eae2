// What S3 says about one object.
#pragma once

#include <cstdint>
#include <string>

namespace s3tc {

struct ObjectInfo {
    std::string key;
    std::string etag;
    uint64_t size = 0;
    std::string last_modified;  // as S3 sent it (RFC 1123 from HEAD/GET, ISO 8601 from LIST)
    std::string storage_class;  // "" when S3 did not say (STANDARD)
    std::string restore;        // the x-amz-restore header of an archived object (HEAD); "" when none
};

}  // namespace s3tc
