#include "landing.h"

#include <algorithm>
#include <iterator>

namespace s3tc {

void Landing::mark_landed(uint64_t start, uint64_t end) {
    if (end <= start) return;
    auto next = landed.upper_bound(start);
    if (next != landed.begin()) {
        auto before = std::prev(next);
        if (before->second >= start) {  // touches or overlaps the range before: one range
            start = before->first;
            end = std::max(end, before->second);
            landed.erase(before);
        }
    }
    while (next != landed.end() && next->first <= end) {
        end = std::max(end, next->second);
        next = landed.erase(next);
    }
    landed.emplace(start, end);
}

bool Landing::has_landed(uint64_t start, uint64_t end) const {
    if (end <= start) return true;
    auto after = landed.upper_bound(start);
    return after != landed.begin() && std::prev(after)->second >= end;
}

}  // namespace s3tc
