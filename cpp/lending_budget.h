// How much of the client's part buffers streams' readers may hold at once.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>

namespace s3tc {

// A stream's reader may keep a received part in the CRT's pool buffer until it copies it out (no copy on the CRT's
// delivery thread, no second buffer). A reader that stops reading would then hold pool memory the CRT needs for
// every other request's parts, so what all readers hold stays within a budget: a quarter of the pool's limit.
class LendingBudget {
public:
    explicit LendingBudget(size_t limit) : limit_(limit) {}

    // True if `bytes` more fit (and counts them), false to copy the part instead. give_back() when it is let go.
    bool lend(size_t bytes) {
        size_t lent = lent_.load();
        do {
            if (bytes > limit_ - std::min(lent, limit_)) return false;
        } while (!lent_.compare_exchange_weak(lent, lent + bytes));
        return true;
    }
    void give_back(size_t bytes) { lent_ -= bytes; }

private:
    const size_t limit_;
    std::atomic<size_t> lent_{0};
};

}  // namespace s3tc
