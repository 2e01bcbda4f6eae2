"""MixedDataset: samples drawn from several iterable datasets in fixed proportions, reproducibly, and
resumable exactly (same layout) or elastically (any number of ranks and workers)."""

import math
import numbers
from typing import Any, Optional, Sequence, Tuple

import torch.utils.data

from ._epochs.saved_state import EpochCounter, EpochPasses
from ._mixing.iterator import MixtureIterator
from ._mixing.state import STATES, STOPS, MixPosition, MixSettings, find_positions, merge, position_from_dict
from ._worker_shard import process_group, worker_shard
from .s3iterable_dataset import S3IterableDataset


class MixedDataset(EpochPasses, torch.utils.data.IterableDataset):
    """Yields samples of ``datasets``, each next one from a source drawn with probability
    proportional to its weight in ``weights``.

    The sources are iterable datasets of this package: ``S3IterableDataset`` of any kind (a prefix,
    a manifest, tar shards) and other ``MixedDataset``. The draws are a pure function of ``seed``,
    the epoch and the shard (rank and DataLoader worker), so a mixture is the same in every run;
    each source shards, shuffles and prefetches as it was made to (give it ``enable_sharding=True``
    to split it across ranks and workers). ``set_epoch`` reaches every source.

    ``stop`` says when a pass ends: ``"all_exhausted"`` (the default: a source that runs out drops
    out, and the others share its weight), ``"first_exhausted"`` (the pass ends when any source runs
    out), or ``"never"`` (a source that runs out starts its next epoch: an endless stream at fixed
    proportions, for training counted in steps).

    A pass can be saved and resumed as a source's can: ``state_dict()`` / ``load_state_dict()`` on
    the mixture and its iterator (what torchdata's StatefulDataLoader calls) hold the draws so far and
    every source's state, and ``elastic_state()`` merges the states of every rank of a stopped job
    into one that any number of ranks and workers resumes from: every sample of the sources' current
    passes not yet yielded is then read exactly once, and the proportions hold from there on.
    """

    def __init__(
        self,
        datasets: Sequence[Any],
        weights: Sequence[float],
        *,
        seed: int = 0,
        stop: str = "all_exhausted",
    ):
        datasets = list(datasets) if not isinstance(datasets, (str, bytes)) else [datasets]
        if not datasets:
            raise ValueError("datasets is empty: give the mixture at least one S3IterableDataset")
        for i, dataset in enumerate(datasets):
            if not isinstance(dataset, (S3IterableDataset, MixedDataset)):
                raise TypeError(
                    f"datasets[{i}] is a {type(dataset).__name__}: a MixedDataset mixes S3IterableDatasets "
                    "(from_prefix, from_manifest, from_objects, tar shards) and other MixedDatasets"
                )
        if len({id(dataset) for dataset in datasets}) != len(datasets):
            raise ValueError(
                "the same dataset object is given twice: each source keeps its own place, so make a second "
                "dataset of the same objects, or give the one dataset the sum of the two weights"
            )
        self._datasets = datasets
        self._settings = MixSettings(_seed(seed), _weights(weights, len(datasets)), _stop(stop))
        self._epochs = EpochCounter(STATES)
        self._rank, self._world_size = process_group() or (0, 1)

    def __getstate__(self):
        # As S3IterableDataset's: a process group started after the mixture was made still counts.
        self._rank, self._world_size = process_group() or (self._rank, self._world_size)
        return self.__dict__

    @property
    def datasets(self) -> Tuple[Any, ...]:
        """The sources, in the order of ``weights``."""
        return tuple(self._datasets)

    @property
    def weights(self) -> Tuple[float, ...]:
        """The sources' weights, as given."""
        return self._settings.weights

    def _new_pass(self, epoch: int, resume: Optional[MixPosition]) -> MixtureIterator:
        return MixtureIterator(self, epoch, resume)

    def _counter_from_dict(self, state) -> EpochCounter:
        return STATES.counter_from_dict(state, position_from_dict)

    @staticmethod
    def elastic_state(states) -> dict:
        """Merges the saved states of every rank of a stopped job (each rank's StatefulDataLoader
        ``state_dict()``, or the iterators' states) into one that a job with any number of ranks and
        workers loads with ``load_state_dict`` before iterating. Each source's states merge by that
        source's rule: the samples of its current pass not yet yielded are read exactly once. With
        ``stop="never"`` shards may be in different passes of a source: the merge resumes the
        earliest, and the passes after it are read whole."""
        return merge(find_positions(states)).to_dict()

    def _current_shard(self) -> Tuple[int, int]:
        """(this worker's shard, number of shards) over DataLoader workers and distributed ranks: the
        mixture's draws differ by shard, whether its sources split their objects or not."""
        return worker_shard(self._rank, self._world_size)


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return seed


def _weights(weights, count: int) -> Tuple[float, ...]:
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
        raise TypeError(f"weights must be a sequence of numbers, one per dataset, got {weights!r}")
    weights = list(weights)
    if len(weights) != count:
        raise ValueError(f"{count} datasets but {len(weights)} weights: give one weight per dataset")
    for i, weight in enumerate(weights):
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
            raise TypeError(f"weights[{i}] is {weight!r}: weights are numbers such as 0.5 or 3")
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(
                f"weights[{i}] is {weight!r}: a weight is a positive, finite number (leave a source out instead "
                "of giving it 0)"
            )
    return tuple(float(weight) for weight in weights)


def _stop(stop) -> str:
    if stop not in STOPS:
        raise ValueError(f"stop must be one of {STOPS}, got {stop!r}")
    return stop
