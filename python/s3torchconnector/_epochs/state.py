"""Where an S3IterableDataset stands: a small, versioned record, checked when it is loaded.

A *position* says how far one shard (a rank's DataLoader worker) got in one epoch: the epoch, the
earlier runs of that epoch that stopped part-way (``rounds``), the shard and how many samples it
yielded. No object list: a few integers and a fingerprint of the listing, so that a state saved
with every checkpoint costs nothing, and a state of another dataset is refused, not misapplied.
"""

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

FORMAT = "s3torchconnector.S3IterableDataset"
VERSION = 1
MIXTURE_FORMAT = "s3torchconnector.MixedDataset"  # a MixedDataset's state, which holds its sources' (_mixing.state)


@dataclass(frozen=True)
class Settings:
    """What decides the order besides the listing: a state is only valid for the same settings."""

    shuffle: bool
    seed: int
    shuffle_buffer_size: int
    shard_format: Optional[str] = None


@dataclass(frozen=True)
class Listing:
    """The listing a state was saved against: how many objects, and a digest of their keys."""

    objects: int
    digest: str


@dataclass(frozen=True)
class Position:
    epoch: int
    settings: Settings
    listing: Optional[Listing]  # None when nothing was read yet (nothing to check against)
    rounds: Tuple[Tuple[int, ...], ...] = ()
    shard: Optional[int] = None  # None: any shard of whatever layout reads it next (elastic)
    shards: Optional[int] = None
    yielded: int = 0  # objects (tar shards) this shard finished in this run
    # Tar shards only: the samples of a shard read part-way, by its position in the listing. `partial`
    # samples of the object at `current` were yielded; `skips` are read part-way by earlier runs.
    current: Optional[int] = None
    partial: int = 0
    skips: Tuple[Tuple[int, int], ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        state = asdict(self)
        state["rounds"] = [list(run) for run in self.rounds]
        state["skips"] = [list(skip) for skip in self.skips]
        return {"format": FORMAT, "version": VERSION, "kind": "position", **state}

    def skips_after(self) -> Dict[int, int]:
        """Samples to skip, by listing position, when this position is resumed."""
        skips = dict(self.skips)
        if self.current is not None and self.partial:
            skips[self.current] = self.partial
        return skips


@dataclass
class EpochCounter:
    """The dataset's own state: the epoch ``set_epoch`` gave, and how many passes were made since."""

    epoch: int = 0
    passes: int = 0
    pending: Optional[Position] = field(default=None)

    def to_dict(self) -> Dict[str, Any]:
        pending = self.pending.to_dict() if self.pending is not None else None
        return {
            "format": FORMAT,
            "version": VERSION,
            "kind": "dataset",
            "epoch": self.epoch,
            "passes": self.passes,
            "pending": pending,
        }


def _check_header(state) -> str:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            "not a state of an S3IterableDataset (it has no format "
            f"{FORMAT!r}): pass what state_dict() or S3IterableDataset.elastic_state() returned"
        )
    if state.get("version") != VERSION:
        raise ValueError(
            f"this S3IterableDataset state has version {state.get('version')!r}; this release reads "
            f"version {VERSION}: resume with the release that saved it"
        )
    return str(state.get("kind"))


def _non_negative_int(state: dict, name: str) -> int:
    value = state.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"corrupt S3IterableDataset state: {name} must be a non-negative int, got {value!r}")
    return value


def _optional_non_negative_int(state: dict, name: str) -> Optional[int]:
    return None if state.get(name) is None else _non_negative_int(state, name)


def position_from_dict(state) -> Position:
    if _check_header(state) != "position":
        raise ValueError("expected the position of an S3IterableDataset iterator, got its dataset state")
    try:
        settings = Settings(**state["settings"])
        listing = Listing(**state["listing"]) if state["listing"] is not None else None
        rounds = tuple(tuple(int(n) for n in run) for run in state["rounds"])
        skips = tuple((int(position), int(count)) for position, count in state.get("skips", ()))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"corrupt S3IterableDataset state: {error}") from None
    position = Position(
        epoch=_non_negative_int(state, "epoch"),
        settings=settings,
        listing=listing,
        rounds=rounds,
        shard=_optional_non_negative_int(state, "shard"),
        shards=_optional_non_negative_int(state, "shards"),
        yielded=_non_negative_int(state, "yielded"),
        current=_optional_non_negative_int(state, "current"),
        partial=_non_negative_int(state, "partial"),
        skips=skips,
    )
    if (position.shard is None) != (position.shards is None) or (
        position.shard is not None and position.shards is not None and position.shard >= position.shards
    ):
        raise ValueError(f"corrupt S3IterableDataset state: shard {position.shard} of {position.shards}")
    return position


def dataset_state_from_dict(state) -> EpochCounter:
    """The dataset's own state, or (for convenience) a position to resume from."""
    if _check_header(state) == "position":
        return EpochCounter(pending=position_from_dict(state))
    pending = state.get("pending")
    return EpochCounter(
        epoch=_non_negative_int(state, "epoch"),
        passes=_non_negative_int(state, "passes"),
        pending=position_from_dict(pending) if pending is not None else None,
    )


def check_settings(position: Position, settings: Settings) -> None:
    for name in ("shuffle", "seed", "shuffle_buffer_size", "shard_format"):
        saved, ours = getattr(position.settings, name), getattr(settings, name)
        if saved != ours:
            raise ValueError(
                f"this state was saved by an S3IterableDataset with {name}={saved!r}, and this one has "
                f"{name}={ours!r}: resume with the dataset's original settings"
            )


def check_listing(position: Position, listing: Listing, source: str) -> None:
    saved = position.listing
    if saved is None or saved == listing:
        return
    if saved.objects != listing.objects:
        change = f"{saved.objects} objects when the state was saved, {listing.objects} now"
    else:
        change = f"the same number of objects ({listing.objects}) but other keys"
    raise ValueError(
        f"this state belongs to another dataset, or {source} changed since it was saved: {change}. "
        "Resume over the same objects (a manifest keeps a listing fixed)"
    )


def find_positions(states: Any) -> List[Position]:
    """Every iterator position in ``states``: our own states, or whatever holds them, such as the
    ``state_dict()`` of a torchdata StatefulDataLoader (one per rank), however deeply nested."""
    found: List[Position] = []
    pending = [states]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if item.get("format") == FORMAT and item.get("kind") == "position":
                found.append(position_from_dict(item))
            elif item.get("format") == MIXTURE_FORMAT:
                raise ValueError(
                    "these are the states of a MixedDataset, which holds its sources' states: merge them with "
                    "MixedDataset.elastic_state() and load that into the mixture"
                )
            else:
                pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return found


def merge(positions: Iterable[Position]) -> Position:
    """One position, readable by any layout, from the positions of every shard of a stopped run."""
    positions = list(positions)
    if not positions:
        raise ValueError("no S3IterableDataset state found: pass the saved loader states of every rank")
    first = positions[0]
    for position in positions:
        if (position.epoch, position.settings, position.rounds) != (first.epoch, first.settings, first.rounds):
            raise ValueError(
                "the states are not of one run of one epoch (their epochs, settings or earlier runs differ): "
                "pass the states that all ranks saved at the same step"
            )
        if position.shard is None:
            raise ValueError("a state made by elastic_state() cannot be merged again: resume from it first")
    shards = first.shards
    assert shards is not None  # every position has a shard (checked above), so a layout (position_from_dict)
    by_shard: Dict[int, Position] = {}
    for position in positions:
        if position.shards != shards:
            raise ValueError(f"the states come from layouts of {shards} and {position.shards} shards")
        assert position.shard is not None
        if position.shard in by_shard:
            raise ValueError(
                f"two states of shard {position.shard} of {shards}: pass each rank's state once (with "
                "enable_sharding=False every worker reads every object, so there is nothing to merge)"
            )
        by_shard[position.shard] = position
    missing = sorted(set(range(shards)) - set(by_shard))
    if missing:
        raise ValueError(
            f"the states of shards {missing} of {shards} are missing: pass the saved loader states of "
            "every rank (each holds its workers' states)"
        )
    listings = {p.listing for p in positions if p.listing is not None}
    if len(listings) > 1:
        raise ValueError("the states were saved against different listings: the dataset changed between them")
    yielded = tuple(by_shard[shard].yielded for shard in range(shards))
    # Skips no shard used are still owed; each shard's part-read object adds one.
    skips = set.intersection(*(set(p.skips) for p in positions))
    skips.update((p.current, p.partial) for p in positions if p.current is not None and p.partial)
    return Position(
        epoch=first.epoch,
        settings=first.settings,
        listing=listings.pop() if listings else None,
        rounds=first.rounds + (yielded,),
        skips=tuple(sorted(skips)),
    )
