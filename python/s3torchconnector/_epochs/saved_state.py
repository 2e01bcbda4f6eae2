"""What the saved states of S3IterableDataset and MixedDataset share: a versioned header checked on
load, counts checked one by one, the dataset's own state (its epoch counter), and the search for
iterator positions in whatever holds them (a StatefulDataLoader's state, one per rank)."""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, TypeVar

P = TypeVar("P")


class ShardPosition(Protocol):
    """Where one shard (a rank's DataLoader worker) stood, in a layout of ``shards``; None for both
    in a position made by elastic_state, for any layout."""

    @property
    def shard(self) -> Optional[int]: ...
    @property
    def shards(self) -> Optional[int]: ...


S = TypeVar("S", bound=ShardPosition)


class StateFormat:
    """One dataset kind's saved states: ``format`` names them, ``version`` is the one this release reads."""

    def __init__(self, format: str, version: int, dataset: str, article: str = "a"):
        self.format = format
        self.version = version
        self.dataset = dataset  # the class, in messages
        self.a_dataset = f"{article} {dataset}"

    def header(self, kind: str) -> Dict[str, Any]:
        return {"format": self.format, "version": self.version, "kind": kind}

    def kind_of(self, state) -> str:
        """The kind of ``state`` ("position" or "dataset"), once its header says it is one of ours."""
        if not isinstance(state, dict) or state.get("format") != self.format:
            raise ValueError(
                f"not a state of {self.a_dataset} (it has no format "
                f"{self.format!r}): pass what state_dict() or {self.dataset}.elastic_state() returned"
            )
        if state.get("version") != self.version:
            raise ValueError(
                f"this {self.dataset} state has version {state.get('version')!r}; this release reads version "
                f"{self.version}: resume with the release that saved it"
            )
        return str(state.get("kind"))

    def count(self, state: dict, name: str) -> int:
        value = state.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"corrupt {self.dataset} state: {name} must be a non-negative int, got {value!r}")
        return value

    def optional_count(self, state: dict, name: str) -> Optional[int]:
        return None if state.get(name) is None else self.count(state, name)

    def check_settings(self, saved, ours, names: Sequence[str], advice: str) -> None:
        """Raises unless the settings a state was saved with are this dataset's."""
        for name in names:
            was, now = getattr(saved, name), getattr(ours, name)
            if was != now:
                raise ValueError(
                    f"this state was saved by {self.a_dataset} with "
                    f"{name}={was!r}, and this one has {name}={now!r}: {advice}"
                )

    def counter_from_dict(self, state, position_from_dict: Callable[[Any], Any]) -> "EpochCounter":
        """The dataset's own state, or (for convenience) a position to resume from."""
        if self.kind_of(state) == "position":
            return EpochCounter(self, pending=position_from_dict(state))
        pending = state.get("pending")
        return EpochCounter(
            self,
            epoch=self.count(state, "epoch"),
            passes=self.count(state, "passes"),
            pending=position_from_dict(pending) if pending is not None else None,
        )

    def find_positions(self, states: Any, position_from_dict: Callable[[Any], P], foreign=None) -> List[P]:
        """Every iterator position of this format in ``states``, however deeply nested (not looking inside
        one). ``foreign``: another format whose states are refused with a ValueError of the message given."""
        foreign = foreign or {}
        found: List[P] = []
        pending = [states]
        while pending:
            item = pending.pop()
            if isinstance(item, dict):
                if item.get("format") == self.format and item.get("kind") == "position":
                    found.append(position_from_dict(item))
                elif item.get("format") in foreign:
                    raise ValueError(foreign[item["format"]])
                else:
                    pending.extend(item.values())
            elif isinstance(item, (list, tuple)):
                pending.extend(item)
        return found


def one_per_shard(positions: Sequence[S]) -> List[S]:
    """The positions of every shard of one stopped run, in shard order: each a shard's (not made by
    elastic_state), of one layout, each shard once, none missing; else a ValueError that says which."""
    by_shard: Dict[int, S] = {}
    shards = positions[0].shards
    for position in positions:
        shard = position.shard
        if shard is None or shards is None:
            raise ValueError("a state made by elastic_state() cannot be merged again: resume from it first")
        if position.shards != shards:
            raise ValueError(f"the states come from layouts of {shards} and {position.shards} shards")
        if shard in by_shard:
            raise ValueError(
                f"two states of shard {shard} of {shards}: pass each rank's state once (with "
                "enable_sharding=False every worker reads every object, so there is nothing to merge)"
            )
        by_shard[shard] = position
    assert shards is not None  # every position has a layout (checked above)
    missing = sorted(set(range(shards)) - set(by_shard))
    if missing:
        raise ValueError(
            f"the states of shards {missing} of {shards} are missing: pass the saved loader states of "
            "every rank (each holds its workers' states)"
        )
    return [by_shard[shard] for shard in range(shards)]


@dataclass
class EpochCounter:
    """A dataset's own state: the epoch ``set_epoch`` gave, how many passes were made since, and a
    loaded position that the next pass resumes from."""

    format: StateFormat
    epoch: int = 0
    passes: int = 0
    pending: Optional[Any] = field(default=None)  # a position of the format (with to_dict)

    def to_dict(self) -> Dict[str, Any]:
        pending = self.pending.to_dict() if self.pending is not None else None
        return {**self.format.header("dataset"), "epoch": self.epoch, "passes": self.passes, "pending": pending}


class EpochPasses:
    """The epochs and passes of an iterable dataset, shared by S3IterableDataset and MixedDataset:
    ``set_epoch``, each ``iter()`` a new pass, and the dataset's part of the StatefulDataLoader
    protocol. A dataset gives ``_epochs`` (an EpochCounter), ``_new_pass(epoch, resume)`` (its
    iterator) and ``_counter_from_dict``."""

    _epochs: EpochCounter

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next pass reads, which draws its order (a shuffle's, a mixture's). Call it at
        the start of every epoch, as with DistributedSampler. A process that iterates the dataset
        again without a new ``set_epoch`` moves on to the next epoch by itself (persistent DataLoader
        workers keep their own copy of the dataset, which ``set_epoch`` in the main process does not
        reach)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self._epochs = EpochCounter(self._epochs.format, epoch=epoch, pending=self._epochs.pending)

    def __iter__(self):
        epochs = self._epochs
        epoch = epochs.epoch + epochs.passes
        epochs.passes += 1
        resume, epochs.pending = epochs.pending, None
        return self._new_pass(epoch, resume)

    def state_dict(self) -> dict:
        """The epoch counter, and a loaded position not yet resumed from. Where a pass stands is its
        iterator's ``state_dict()``: StatefulDataLoader saves both."""
        return self._epochs.to_dict()

    def load_state_dict(self, state: dict) -> None:
        """Takes this dataset's ``state_dict()``, an iterator's, or ``elastic_state(...)``: the next
        pass resumes from the position it holds."""
        self._epochs = self._counter_from_dict(state)

    def _new_pass(self, epoch: int, resume):
        raise NotImplementedError

    def _counter_from_dict(self, state) -> EpochCounter:
        raise NotImplementedError

    def _restart_epoch(self, epoch: int) -> None:
        """As a MixedDataset's source: its next pass is the start of ``epoch``."""
        self._epochs = EpochCounter(self._epochs.format, epoch=epoch)

    def _continue_epoch(self, epoch: int) -> None:
        """A pass of ``epoch`` resumed: the pass after it reads the next epoch."""
        self._epochs.epoch, self._epochs.passes = epoch, 1
