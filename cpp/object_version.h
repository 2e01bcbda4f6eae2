// The version of an object that one reader's requests must all come from.
#pragma once

#include <mutex>
#include <string>
#include <utility>

namespace s3tc {

// Shared by every GET a reader makes of one object: the first response's ETag is remembered,
// later requests send it as If-Match, and any response with another ETag fails the read.
// So a reader never splices bytes of two versions, even across separate ranged requests.
class ObjectVersion {
public:
    // `etag`, when given, is the version to read from the first request on (one a listing or a
    // manifest recorded); otherwise the first response decides.
    explicit ObjectVersion(std::string etag = "") : etag_(std::move(etag)) {}

    // The ETag every request must match, or "" while none has answered yet.
    std::string etag() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return etag_;
    }

    // Records `seen` if it is the first ETag; false when it differs from the one recorded.
    bool matches(const std::string &seen) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (etag_.empty()) etag_ = seen;
        return seen.empty() || seen == etag_;
    }

private:
    mutable std::mutex mutex_;
    std::string etag_;
};

}  // namespace s3tc
