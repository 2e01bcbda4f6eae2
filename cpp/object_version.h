// The version of an object that one reader's requests must all come from.
#pragma once

#include <mutex>
#include <string>
#include <utility>

namespace s3tc {

// An ETag as S3 defines it: "abc" and abc are the same ETag (some servers list it unquoted and send it quoted
// on GET); a weak one (W/"abc") cannot pin a version, so it matches none (RFC 9110's strong comparison).
inline bool is_weak_etag(const std::string &etag) { return etag.compare(0, 2, "W/") == 0; }

inline std::string unquoted_etag(const std::string &etag) {
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return etag.substr(1, etag.size() - 2);
    return etag;
}

inline bool same_etag(const std::string &a, const std::string &b) {
    return !is_weak_etag(a) && !is_weak_etag(b) && unquoted_etag(a) == unquoted_etag(b);
}

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

    // The If-Match header's value for that ETag: quoted, as HTTP requires, however it was recorded.
    std::string if_match() const {
        std::lock_guard<std::mutex> lock(mutex_);
        if (etag_.empty() || is_weak_etag(etag_)) return etag_;
        return '"' + unquoted_etag(etag_) + '"';
    }

    // Records `seen` if it is the first (strong) ETag; false when it is not the one recorded.
    bool matches(const std::string &seen) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (seen.empty()) return true;
        if (etag_.empty()) {
            if (!is_weak_etag(seen)) etag_ = seen;
            return true;
        }
        return same_etag(seen, etag_);
    }

private:
    mutable std::mutex mutex_;
    std::string etag_;
};

}  // namespace s3tc
