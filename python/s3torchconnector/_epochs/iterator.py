"""One pass of an S3IterableDataset over its objects: an epoch, or the rest of one.

The pass is Stateful in torchdata's sense (``state_dict`` / ``load_state_dict``): a
StatefulDataLoader saves where each worker's pass stands with every batch and, in a new process,
loads it into the new pass before its first item, which then continues exactly where it stopped.
"""

import hashlib
from itertools import islice, takewhile
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence, Tuple

from .._listing.indexed_objects import IndexedObjects
from .._listing.sources import dataset_objects
from .order import epoch_order, remaining, shard_positions
from .state import Listing, Position, check_listing, check_settings, position_from_dict


class LazyListing:
    """The dataset's objects, listed only as far as needed: a shuffle, a resume or a saved state
    need all of them (and their fingerprint); a plain pass reads while it lists."""

    def __init__(self, objects: Iterable[Any]) -> None:
        self._fingerprint: Optional[Listing] = None
        if isinstance(objects, IndexedObjects):  # listed whole already, each entry made when indexed
            self._items: Sequence[Any] = objects
            self._objects: Iterator[Any] = iter(())
            self._complete = True
        else:
            self._items = []
            self._objects = iter(objects)
            self._complete = False

    def has(self, position: int) -> bool:
        while len(self._items) <= position and not self._complete:
            item = next(self._objects, None)
            if item is None:
                self._complete = True
            else:
                self._items.append(item)  # type: ignore[attr-defined]  # a list until complete
        return position < len(self._items)

    def __getitem__(self, position: int):
        return self._items[position]

    def all(self) -> Sequence[Any]:
        if not self._complete:
            self._items.extend(self._objects)  # type: ignore[attr-defined]  # a list until complete
            self._complete = True
        return self._items

    def fingerprint(self) -> Listing:
        """The object count and a digest of the keys, each followed by a NUL (made once: the listing
        is complete by then, and a StatefulDataLoader asks with every batch)."""
        if self._fingerprint is None:
            items = self.all()
            if isinstance(items, IndexedObjects):  # the same digest, computed when the index was built
                digest = items.keys_digest()
            else:
                text = "\0".join(item.key for item in items) + "\0" if items else ""
                digest = hashlib.sha256(text.encode()).hexdigest()
            self._fingerprint = Listing(objects=len(items), digest=digest[:16])
        return self._fingerprint


class EpochIterator:
    """Yields the dataset's samples for this pass; ``state_dict`` tells how far it got.

    The pass reads *units*: objects, each one sample, or tar shards, each many. Where it stands is
    the number of units this shard finished, plus the samples yielded from the unit it is in.
    """

    def __init__(self, dataset, epoch: int, resume: Optional[Position] = None):
        self._dataset = dataset
        self._epoch = epoch
        self._resume: Optional[Position] = None
        self._units: Optional[Iterator[Tuple[int, Iterator[Tuple[Any, bool]]]]] = None
        self._listing: Optional[LazyListing] = None
        self._rounds: Tuple[Tuple[int, ...], ...] = ()
        self._shard = (0, 1)
        self._finished = 0  # units finished in this run
        self._unit: Optional[Iterator[Tuple[Any, bool]]] = None  # (sample, is it the unit's last)
        self._current: Optional[int] = None  # listing position of the unit being read
        self._partial = 0  # samples yielded from it
        self._skips: Dict[int, int] = {}  # samples to skip, by listing position (read by an earlier run)
        if resume is not None:
            self._load(resume)

    def __iter__(self) -> "EpochIterator":
        return self

    def __next__(self) -> Any:
        if self._units is None:
            self._units = self._start()
        while True:
            if self._unit is None:
                self._current, samples = next(self._units)  # StopIteration ends the pass
                self._partial = self._skips.pop(self._current, 0)
                self._unit = _with_last_flag(islice(samples, self._partial, None))
            try:
                sample, last = next(self._unit)
            except StopIteration:  # a unit with no samples (left)
                self._finish_unit()
                continue
            if last:
                self._finish_unit()
            else:
                self._partial += 1
            return sample

    def _finish_unit(self) -> None:
        self._unit, self._current, self._partial = None, None, 0
        self._finished += 1

    def state_dict(self) -> dict:
        settings = self._dataset._settings
        if self._units is None:  # not started: it stands where it was loaded, or at the start
            resume = self._resume
            if resume is not None and resume.shard is not None:
                return resume.to_dict()
            shard, shards = self._dataset._current_shard()
            if resume is None:
                return Position(self._epoch, settings, None, (), shard, shards).to_dict()
            return Position(
                self._epoch, settings, resume.listing, resume.rounds, shard, shards, skips=resume.skips
            ).to_dict()
        shard, shards = self._shard
        assert self._listing is not None  # made with the units, when the pass started
        return Position(
            self._epoch,
            settings,
            self._listing.fingerprint(),
            self._rounds,
            shard,
            shards,
            self._finished,
            current=self._current,
            partial=self._partial,
            skips=tuple(sorted(self._skips.items())),
        ).to_dict()

    def load_state_dict(self, state: dict) -> None:
        if self._units is not None:
            raise RuntimeError("load_state_dict() must come before the first item of the pass is taken")
        self._load(position_from_dict(state))

    def _load(self, position: Position) -> None:
        check_settings(position, self._dataset._settings)
        self._resume = position
        self._epoch = position.epoch
        self._dataset._continue_epoch(position.epoch)

    def _start(self) -> Iterator[Tuple[int, Iterator[Tuple[Any, bool]]]]:
        dataset = self._dataset
        settings = dataset._settings
        resume, skip = self._resume, 0
        known = settings.shuffle or resume is not None  # the whole listing, before the first read
        objects = dataset_objects(dataset._get_dataset_objects, dataset._get_client(), whole=known)
        self._listing = listing = LazyListing(objects)
        self._shard = shard, shards = dataset._current_shard()
        if resume is not None:
            check_listing(resume, listing.fingerprint(), dataset._source_description())
            self._rounds = resume.rounds
            self._skips = resume.skips_after()
            if resume.shard is not None:
                if (resume.shard, resume.shards) != (shard, shards):
                    raise ValueError(
                        f"this state was saved by shard {resume.shard} of {resume.shards} (ranks x DataLoader "
                        f"workers), and this worker is shard {shard} of {shards}: to resume with another number "
                        "of ranks or workers, load S3IterableDataset.elastic_state(states of every rank)"
                    )
                skip = resume.yielded
        order = epoch_order(
            len(listing.all()) if known else None, shuffle=settings.shuffle, seed=settings.seed, epoch=self._epoch
        )
        if not known:
            order = takewhile(listing.has, order)  # a plain pass: read while listing
        # For tar shards the buffer mixes the samples within each shard instead of the shards.
        unit_buffer = 0 if settings.shard_format else settings.shuffle_buffer_size
        if self._rounds:
            order = remaining(order, self._rounds, buffer_size=unit_buffer, seed=settings.seed, epoch=self._epoch)
        positions = shard_positions(
            order,
            shard,
            shards,
            buffer_size=unit_buffer,
            seed=settings.seed,
            epoch=self._epoch,
            run=len(self._rounds),
        )
        self._finished = skip
        return dataset._units(islice(positions, skip, None), listing, self._epoch)


def _with_last_flag(items: Iterator[Any]) -> Iterator[Tuple[Any, bool]]:
    """(item, whether it is the last): one item of lookahead, so a pass knows a unit is done as soon
    as its last sample is taken, and a state saved then does not reopen it."""
    items = iter(items)
    previous = next(items, _NOTHING)
    while previous is not _NOTHING:
        try:
            following = next(items, _NOTHING)
        except Exception:
            yield previous, False  # it was whole: give it, then the failure of the one after it
            raise
        yield previous, following is _NOTHING
        previous = following


_NOTHING = object()
