"""Where an S3IterableDataset stands: a small, versioned record, checked when it is loaded.

A *position* says how far one shard (a rank's DataLoader worker) got in one epoch: the epoch, the
earlier runs of that epoch that stopped part-way (``rounds``), the shard and how many samples it
yielded. No object list: a few integers and a fingerprint of the listing, so that a state saved
with every checkpoint costs nothing, and a state of another dataset is refused, not misapplied.
"""

from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .saved_state import StateFormat, one_per_shard

STATES = StateFormat("s3torchconnector.S3IterableDataset", 1, "S3IterableDataset", article="an")
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
        return {**STATES.header("position"), **state}

    def skips_after(self) -> Dict[int, int]:
        """Samples to skip, by listing position, when this position is resumed."""
        skips = dict(self.skips)
        if self.current is not None and self.partial:
            skips[self.current] = self.partial
        return skips


def position_from_dict(state) -> Position:
    if STATES.kind_of(state) != "position":
        raise ValueError("expected the position of an S3IterableDataset iterator, got its dataset state")
    try:
        settings = Settings(**state["settings"])
        listing = Listing(**state["listing"]) if state["listing"] is not None else None
        rounds = tuple(tuple(int(n) for n in run) for run in state["rounds"])
        skips = tuple((int(position), int(count)) for position, count in state.get("skips", ()))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"corrupt S3IterableDataset state: {error}") from None
    position = Position(
        epoch=STATES.count(state, "epoch"),
        settings=settings,
        listing=listing,
        rounds=rounds,
        shard=STATES.optional_count(state, "shard"),
        shards=STATES.optional_count(state, "shards"),
        yielded=STATES.count(state, "yielded"),
        current=STATES.optional_count(state, "current"),
        partial=STATES.count(state, "partial"),
        skips=skips,
    )
    if (position.shard is None) != (position.shards is None) or (
        position.shard is not None and position.shards is not None and position.shard >= position.shards
    ):
        raise ValueError(f"corrupt S3IterableDataset state: shard {position.shard} of {position.shards}")
    return position


def check_settings(position: Position, settings: Settings) -> None:
    names = ("shuffle", "seed", "shuffle_buffer_size", "shard_format")
    STATES.check_settings(position.settings, settings, names, "resume with the dataset's original settings")


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
    mixture = (
        "these are the states of a MixedDataset, which holds its sources' states: merge them with "
        "MixedDataset.elastic_state() and load that into the mixture"
    )
    return STATES.find_positions(states, position_from_dict, foreign={MIXTURE_FORMAT: mixture})


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
    ordered = one_per_shard(positions)
    listings = {p.listing for p in positions if p.listing is not None}
    if len(listings) > 1:
        raise ValueError("the states were saved against different listings: the dataset changed between them")
    yielded = tuple(position.yielded for position in ordered)
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
