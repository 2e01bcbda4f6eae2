"""Which source a mixture takes its next sample from: a weighted draw whose whole state is a count.

Draw ``n`` of one shard is the ``n % BLOCK``-th number of a ``random.Random`` seeded by (seed, epoch,
run, shard, shards, ``n // BLOCK``): the same on every machine and Python run, and a saved count of
draws restores the generator by re-seeding one block and stepping through at most BLOCK numbers.
"""

from bisect import bisect_right
from itertools import accumulate
from typing import List, Optional, Sequence

from .._epochs.order import _rng

BLOCK = 4096


class SourceDraws:
    """Draws source numbers with probability proportional to their weights, among the sources still
    active (a source that ran out is dropped with ``drop``)."""

    def __init__(self, weights: Sequence[float], key: tuple, drawn: int = 0, active: Optional[Sequence[bool]] = None):
        self._weights = list(weights)
        self._key = key
        self.drawn = drawn
        self.active: List[bool] = list(active) if active is not None else [True] * len(self._weights)
        self._sources: List[int] = []
        self._cumulative: List[float] = []
        self._block = -1
        self._numbers = _rng(*key, "block", 0)
        self._reweigh()

    def any_active(self) -> bool:
        return bool(self._sources)

    def drop(self, source: int) -> None:
        self.active[source] = False
        self._reweigh()

    def next(self) -> int:
        block, offset = divmod(self.drawn, BLOCK)
        if block != self._block:
            self._numbers = _rng(*self._key, "block", block)
            for _ in range(offset):  # a resumed count lands mid-block
                self._numbers.random()
            self._block = block
        self.drawn += 1
        point = self._numbers.random() * self._cumulative[-1]
        # random() < 1, but the product may round up to the total.
        return self._sources[min(bisect_right(self._cumulative, point), len(self._sources) - 1)]

    def _reweigh(self) -> None:
        self._sources = [source for source, active in enumerate(self.active) if active]
        self._cumulative = list(accumulate(self._weights[source] for source in self._sources))
