"""One pass of a MixedDataset: each next sample from a source drawn by weight, resumable.

The pass is Stateful in torchdata's sense, as a source's own pass is: its ``state_dict`` holds the
count of draws, which sources are still active, and every source's own iterator state, so a
StatefulDataLoader that loads it in a new process continues exactly where the saved one stopped.
"""

from typing import Any, List, Optional

from .draws import SourceDraws
from .state import MixPosition, check_settings, position_from_dict


class MixtureIterator:
    def __init__(self, mixture, epoch: int, resume: Optional[MixPosition] = None):
        self._mixture = mixture
        self._epoch = epoch
        self._started = False
        self._draws: SourceDraws
        self._ended = False
        self._passes: List[Any] = []  # each source's iterator: an S3IterableDataset's or a mixture's pass
        self._previous: List[Optional[dict]] = []
        self._open(resume)

    def __iter__(self) -> "MixtureIterator":
        return self

    def __next__(self) -> Any:
        self._started = True
        draws = self._draws
        while not self._ended and draws.any_active():
            source = draws.next()
            sample = next(self._passes[source], _NONE)
            if sample is _NONE and self._mixture._settings.stop == "never":
                # The source's next pass: where this one ended stays known for an elastic merge.
                self._previous[source] = self._passes[source].state_dict()
                self._passes[source] = iter(self._mixture._datasets[source])
                sample = next(self._passes[source], _NONE)
            if sample is not _NONE:
                return sample
            if self._mixture._settings.stop == "first_exhausted":
                self._ended = True
            else:  # it ran out (with "never": a whole pass of it has no samples for this shard)
                draws.drop(source)
        self._ended = True
        raise StopIteration

    def state_dict(self) -> dict:
        draws = self._draws
        return MixPosition(
            self._mixture._settings,
            self._epoch,
            self._run,
            self._shard,
            self._shards,
            draws.drawn,
            tuple(draws.active),
            self._ended,
            tuple(one_pass.state_dict() for one_pass in self._passes),
            tuple(self._previous),
        ).to_dict()

    def load_state_dict(self, state: dict) -> None:
        if self._started:
            raise RuntimeError("load_state_dict() must come before the first item of the pass is taken")
        self._open(position_from_dict(state))

    def _open(self, resume: Optional[MixPosition]) -> None:
        """Starts (without reading) each source's pass: from the resumed position's state of it,
        else at this epoch's start."""
        mixture = self._mixture
        sources = mixture._datasets
        self._shard, self._shards = mixture._current_shard()
        if resume is None:
            for source in sources:
                source._restart_epoch(self._epoch)
            self._run, drawn, active, self._ended = 0, 0, None, False
            self._previous = [None] * len(sources)
        else:
            check_settings(resume, mixture._settings)
            if resume.shard is not None and (resume.shard, resume.shards) != (self._shard, self._shards):
                raise ValueError(
                    f"this state was saved by shard {resume.shard} of {resume.shards} (ranks x DataLoader workers), "
                    f"and this worker is shard {self._shard} of {self._shards}: to resume with another number of "
                    "ranks or workers, load MixedDataset.elastic_state(states of every rank)"
                )
            self._epoch = resume.epoch
            mixture._continue_epoch(resume.epoch)
            for source, state in zip(sources, resume.sources):
                source.load_state_dict(state)
            self._run, drawn, active, self._ended = resume.run, resume.drawn, resume.active, resume.ended
            self._previous = list(resume.previous)
        self._passes = [iter(source) for source in sources]
        key = (mixture._settings.seed, self._epoch, self._run, self._shard, self._shards)
        self._draws = SourceDraws(mixture._settings.weights, key, drawn, active)


_NONE = object()
