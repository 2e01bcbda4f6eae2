"""One pass of an S3IterableDataset over its objects: an epoch, or the rest of one.

The pass is Stateful in torchdata's sense (``state_dict`` / ``load_state_dict``): a
StatefulDataLoader saves where each worker's pass stands with every batch and, in a new process,
loads it into the new pass before its first item, which then continues exactly where it stopped.
"""

import hashlib
from itertools import islice, takewhile
from typing import Any, Iterator, List, Optional

from . import _epoch_order
from ._iterable_state import Listing, Position, check_listing, check_settings, position_from_dict


class LazyListing:
    """The dataset's objects, listed only as far as needed: a shuffle, a resume or a saved state
    need all of them (and their fingerprint); a plain pass reads while it lists."""

    def __init__(self, objects):
        self._objects = iter(objects)
        self._items: List[Any] = []
        self._digest = hashlib.sha256()
        self._complete = False

    def has(self, position: int) -> bool:
        while len(self._items) <= position and not self._complete:
            item = next(self._objects, None)
            if item is None:
                self._complete = True
            else:
                self._items.append(item)
                self._digest.update(item.key.encode() + b"\0")
        return position < len(self._items)

    def __getitem__(self, position: int):
        return self._items[position]

    def all(self) -> List[Any]:
        while not self._complete:
            self.has(len(self._items))
        return self._items

    def fingerprint(self) -> Listing:
        return Listing(objects=len(self.all()), digest=self._digest.hexdigest()[:16])


class EpochIterator:
    """Yields the dataset's samples for this pass; ``state_dict`` tells how far it got."""

    def __init__(self, dataset, epoch: int, resume: Optional[Position] = None):
        self._dataset = dataset
        self._epoch = epoch
        self._resume: Optional[Position] = None
        self._samples: Optional[Iterator[Any]] = None
        self._listing: Optional[LazyListing] = None
        self._rounds = ()
        self._shard = (0, 1)
        self._yielded = 0
        if resume is not None:
            self._load(resume)

    def __iter__(self) -> "EpochIterator":
        return self

    def __next__(self) -> Any:
        if self._samples is None:
            self._samples = self._start()
        sample = next(self._samples)
        self._yielded += 1
        return sample

    def state_dict(self) -> dict:
        if self._samples is None:  # not started: it stands where it was loaded, or at the start
            resume = self._resume
            if resume is not None and resume.shard is not None:
                return resume.to_dict()
            shard, shards = self._dataset._current_shard()
            listing, rounds = (resume.listing, resume.rounds) if resume is not None else (None, ())
            return Position(self._epoch, self._dataset._settings, listing, rounds, shard, shards, 0).to_dict()
        shard, shards = self._shard
        listing = self._listing.fingerprint()
        return Position(self._epoch, self._dataset._settings, listing, self._rounds, shard, shards, self._yielded).to_dict()

    def load_state_dict(self, state: dict) -> None:
        if self._samples is not None:
            raise RuntimeError("load_state_dict() must come before the first item of the pass is taken")
        self._load(position_from_dict(state))

    def _load(self, position: Position) -> None:
        check_settings(position, self._dataset._settings)
        self._resume = position
        self._epoch = position.epoch
        self._dataset._continue_epoch(position.epoch)

    def _start(self) -> Iterator[Any]:
        dataset = self._dataset
        settings = dataset._settings
        self._listing = listing = LazyListing(dataset._get_dataset_objects(dataset._get_client()))
        self._shard = shard, shards = dataset._current_shard()
        resume, skip = self._resume, 0
        if resume is not None:
            check_listing(resume, listing.fingerprint(), dataset._source_description())
            self._rounds = resume.rounds
            if resume.shard is not None:
                if (resume.shard, resume.shards) != (shard, shards):
                    raise ValueError(
                        f"this state was saved by shard {resume.shard} of {resume.shards} (ranks x DataLoader "
                        f"workers), and this worker is shard {shard} of {shards}: to resume with another number "
                        "of ranks or workers, load S3IterableDataset.elastic_state(states of every rank)"
                    )
                skip = resume.yielded
        known = settings.shuffle or resume is not None
        order = _epoch_order.epoch_order(
            len(listing.all()) if known else None, shuffle=settings.shuffle, seed=settings.seed, epoch=self._epoch
        )
        if not known:
            order = takewhile(listing.has, order)  # a plain pass: read while listing
        if self._rounds:
            order = _epoch_order.remaining(
                order, self._rounds, buffer_size=settings.shuffle_buffer_size, seed=settings.seed, epoch=self._epoch
            )
        positions = _epoch_order.shard_positions(
            order, shard, shards, buffer_size=settings.shuffle_buffer_size, seed=settings.seed,
            epoch=self._epoch, run=len(self._rounds),
        )
        self._yielded = skip
        objects = (listing[position] for position in islice(positions, skip, None))
        return dataset._samples(objects)
