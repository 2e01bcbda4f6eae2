#include "python_shuffle.h"

#include <numeric>
#include <stdexcept>
#include <utility>

namespace s3tc {

namespace {

// The Mersenne Twister as CPython's _randommodule.c runs it (genrand_uint32).
class MersenneTwister {
public:
    MersenneTwister(const std::vector<uint32_t> &words, uint32_t index) : index_(index) {
        if (words.size() != kWords || index > kWords) throw std::invalid_argument("not a Mersenne Twister state");
        std::copy(words.begin(), words.end(), state_);
    }

    uint32_t next() {
        if (index_ >= kWords) refill();
        uint32_t y = state_[index_++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680U;
        y ^= (y << 15) & 0xefc60000U;
        y ^= y >> 18;
        return y;
    }

private:
    static constexpr uint32_t kWords = 624;
    static constexpr uint32_t kShift = 397;

    static uint32_t twist(uint32_t upper, uint32_t lower, uint32_t far) {
        const uint32_t y = (upper & 0x80000000U) | (lower & 0x7fffffffU);
        return far ^ (y >> 1) ^ ((y & 1U) ? 0x9908b0dfU : 0U);
    }

    void refill() {
        for (uint32_t k = 0; k < kWords; ++k)
            state_[k] = twist(state_[k], state_[(k + 1) % kWords], state_[(k + kShift) % kWords]);
        index_ = 0;
    }

    uint32_t state_[kWords];
    uint32_t index_;
};

}  // namespace

std::vector<uint32_t> python_shuffled_positions(uint32_t n, const std::vector<uint32_t> &mt_words, uint32_t mt_index) {
    if (n >= (1U << 31)) throw std::invalid_argument("python_shuffled_positions takes n < 2**31");
    MersenneTwister generator(mt_words, mt_index);
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0U);
    for (uint32_t i = n > 0 ? n - 1 : 0; i > 0; --i) {
        // Random._randbelow(i + 1): draw k-bit numbers, k the bit length of i + 1, until one is below i + 1.
        const uint32_t below = i + 1;
        const int bits = 32 - __builtin_clz(below);
        uint32_t r;
        do {
            r = generator.next() >> (32 - bits);
        } while (r >= below);
        std::swap(order[i], order[r]);
    }
    return order;
}

}  // namespace s3tc
