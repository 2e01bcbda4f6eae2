// The permutation Python's random.shuffle makes of 0..n-1, computed natively.
#pragma once

#include <cstdint>
#include <vector>

namespace s3tc {

// A shuffled dataset's epoch order is random.Random(text seed).shuffle(list(range(n))): every rank and worker
// computes it, and saved states resume against it. In Python that is about 0.8 us per object (8 s per epoch and
// worker for 10 million objects); this takes the same steps (CPython's MT19937 and the rejection sampling of
// Random._randbelow, as in 3.9 to 3.13) from the generator's state, `Random.getstate()[1]`: its 624 words and
// then its position. Only for n < 2**31, where every draw is one 32-bit word.
std::vector<uint32_t> python_shuffled_positions(uint32_t n, const std::vector<uint32_t> &mt_words, uint32_t mt_index);

}  // namespace s3tc
