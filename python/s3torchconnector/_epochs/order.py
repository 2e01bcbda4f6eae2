"""The order an S3IterableDataset reads its objects in: a pure function of the listing's length, the
seed, the epoch, the shard and how far earlier runs of the epoch got.

Everything here works on positions (indices into the listing), never on objects, and draws its
randomness from ``random.Random`` seeded by text: the same on every rank, worker and Python run.

- The epoch's order is the listing order, or with ``shuffle`` a permutation seeded by (seed, epoch).
- Shard ``j`` of ``S`` takes every S-th position of that order, starting at ``j``.
- An optional shuffle buffer reorders each shard's stream a little more, seeded by its shard; for
  tar shards it reorders the samples within each tar shard instead, seeded by that tar shard.
- A *round* is one run of the epoch over one layout of shards that stopped part-way (a preempted
  job): it records how many positions each shard had yielded. The positions left after the rounds,
  in epoch order, are dealt to the shards of the next run, whatever their number.
"""

import random
from itertools import count, islice
from typing import Iterable, Iterator, List, Optional, Sequence, Set

from .. import _native

Round = Sequence[int]  # positions yielded by each shard of one run, indexed by shard


def _rng(*parts) -> random.Random:
    # A text seed is hashed with SHA-512 by random.Random: stable across processes and Python runs,
    # unaffected by PYTHONHASHSEED.
    return random.Random("s3torchconnector/" + "/".join(map(str, parts)))


def epoch_order(length: Optional[int], *, shuffle: bool, seed: int, epoch: int) -> Iterable[int]:
    """All positions in the epoch's order; endless (to be cut by the listing) when the length is
    not known yet, which only an unshuffled order allows."""
    if not shuffle:
        return count() if length is None else range(length)
    if length is None:
        raise ValueError("a shuffled order needs the listing's length")
    rng = _rng(seed, epoch)
    if length < 1 << 31:  # random.shuffle's permutation, computed natively (see cpp/python_shuffle.h)
        return _native.shuffled_positions(length, rng.getstate()[1])
    order = list(range(length))
    rng.shuffle(order)
    return order


def shard_positions(
    order: Iterable[int], shard: int, shards: int, *, buffer_size: int, seed: int, epoch: int, run: int
) -> Iterator[int]:
    """Shard ``shard``'s positions of ``order``, through a shuffle buffer when ``buffer_size`` > 1."""
    dealt = islice(order, shard, None, shards)
    if buffer_size <= 1:
        return dealt
    return _buffer_shuffle(dealt, buffer_size, _rng(seed, epoch, run, shard, shards))


def shuffled_samples(samples: Iterable, size: int, *, seed: int, epoch: int, position: int) -> Iterator:
    """The samples of one tar shard through a shuffle buffer seeded by the shard's listing position:
    the same order whichever worker reads it, so a resume can skip the samples already read."""
    if size <= 1:
        return iter(samples)
    return _buffer_shuffle(iter(samples), size, _rng(seed, epoch, "samples", position))


def _buffer_shuffle(items: Iterator, size: int, rng: random.Random) -> Iterator:
    """Each item waits in a buffer of ``size`` and leaves it at a random turn: items move at most
    about ``size`` places, and memory stays bounded for streams of any length."""
    buffer: List[int] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        turn = rng.randrange(size)
        yield buffer[turn]
        buffer[turn] = item
    rng.shuffle(buffer)
    yield from buffer


def remaining(order: Iterable[int], rounds: Sequence[Round], *, buffer_size: int, seed: int, epoch: int) -> List[int]:
    """The positions of ``order`` that no shard of any earlier round yielded, still in order."""
    left = list(order)
    for run, yielded in enumerate(rounds):
        done: Set[int] = set()
        for shard, taken in enumerate(yielded):
            positions = shard_positions(
                left, shard, len(yielded), buffer_size=buffer_size, seed=seed, epoch=epoch, run=run
            )
            done.update(islice(positions, taken))
        left = [position for position in left if position not in done]
    return left
