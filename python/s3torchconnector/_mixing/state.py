"""Where a MixedDataset stands: a small, versioned record, checked when it is loaded, and the merge of
every shard's record into one that any layout of ranks and workers resumes from.

A mixture's *position* is its draws so far (a count, see ``draws``), which sources are still active,
and the position of each source's own pass, in that source's own format. With ``stop="never"`` a
source that ran out started its next pass: its position is in that pass, and ``previous`` keeps
where its pass before ended, which the merge needs when shards are one pass apart.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .._epochs import state as source_state
from .._epochs.saved_state import StateFormat, one_per_shard
from .._epochs.state import MIXTURE_FORMAT, Position

STATES = StateFormat(MIXTURE_FORMAT, 1, "MixedDataset")
STOPS = ("all_exhausted", "first_exhausted", "never")


@dataclass(frozen=True)
class MixSettings:
    """What decides the mixture besides its sources: a state is only valid for the same settings."""

    seed: int
    weights: Tuple[float, ...]
    stop: str


@dataclass(frozen=True)
class MixPosition:
    settings: MixSettings
    epoch: int
    run: int = 0  # how many elastic resumes this epoch went through: each run draws afresh
    shard: Optional[int] = None  # None: made by elastic_state, for any layout
    shards: Optional[int] = None
    drawn: int = 0
    active: Tuple[bool, ...] = ()
    ended: bool = False  # stop="first_exhausted" ended this shard's mixture
    sources: Tuple[dict, ...] = ()  # each source's iterator state
    previous: Tuple[Optional[dict], ...] = ()  # stop="never": where each source's previous pass ended

    def to_dict(self) -> Dict[str, Any]:
        return {
            **STATES.header("position"),
            "settings": {
                "seed": self.settings.seed,
                "weights": list(self.settings.weights),
                "stop": self.settings.stop,
            },
            "epoch": self.epoch,
            "run": self.run,
            "shard": self.shard,
            "shards": self.shards,
            "drawn": self.drawn,
            "active": list(self.active),
            "ended": self.ended,
            "sources": list(self.sources),
            "previous": list(self.previous),
        }


def position_from_dict(state) -> MixPosition:
    if STATES.kind_of(state) != "position":
        raise ValueError("expected the position of a MixedDataset iterator, got its dataset state")
    try:
        raw = state["settings"]
        settings = MixSettings(int(raw["seed"]), tuple(float(w) for w in raw["weights"]), str(raw["stop"]))
        active = tuple(bool(a) for a in state["active"])
        sources = tuple(state["sources"])
        previous = tuple(state["previous"])
        ended = bool(state["ended"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"corrupt MixedDataset state: {error!r}") from None
    n = len(settings.weights)
    if len(active) != n or len(sources) != n or len(previous) != n:
        raise ValueError(f"corrupt MixedDataset state: {n} weights but {len(sources)} sources")
    if not all(isinstance(s, dict) for s in sources) or not all(p is None or isinstance(p, dict) for p in previous):
        raise ValueError("corrupt MixedDataset state: a source's state is not a dict")
    shard, shards = STATES.optional_count(state, "shard"), STATES.optional_count(state, "shards")
    if (shard is None) != (shards is None) or (shard is not None and shards is not None and shard >= shards):
        raise ValueError(f"corrupt MixedDataset state: shard {shard} of {shards}")
    return MixPosition(
        settings=settings,
        epoch=STATES.count(state, "epoch"),
        run=STATES.count(state, "run"),
        shard=shard,
        shards=shards,
        drawn=STATES.count(state, "drawn"),
        active=active,
        ended=ended,
        sources=sources,
        previous=previous,
    )


def check_settings(position: MixPosition, settings: MixSettings) -> None:
    STATES.check_settings(
        position.settings, settings, ("seed", "weights", "stop"), "resume with the mixture's original settings"
    )


def find_positions(states: Any) -> List[MixPosition]:
    """Every mixture position in ``states`` (the saved StatefulDataLoader states of every rank, however
    nested), not counting the positions of mixtures inside them, which their own merge handles."""
    return STATES.find_positions(states, position_from_dict)


def merge(positions: Sequence[MixPosition]) -> MixPosition:
    """One position, readable by any layout, from the positions of every shard of a stopped run: each
    source's positions merged by that source's own rule (every sample not yet yielded is read once),
    and a new run of draws."""
    if not positions:
        raise ValueError("no MixedDataset state found: pass the saved loader states of every rank")
    first = positions[0]
    for position in positions:
        if (position.settings, position.epoch, position.run) != (first.settings, first.epoch, first.run):
            raise ValueError(
                "the states are not of one run of one epoch of one mixture (their settings, epochs or earlier "
                "runs differ): pass the states that all ranks saved at the same step"
            )
    ordered = one_per_shard(positions)
    sources = tuple(
        _merge_source([p.sources[k] for p in ordered], [p.previous[k] for p in ordered])
        for k in range(len(first.settings.weights))
    )
    n = len(sources)
    return MixPosition(
        first.settings, first.epoch, first.run + 1, active=(True,) * n, sources=sources, previous=(None,) * n
    )


def _merge_source(current: List[dict], previous: List[Optional[dict]]) -> dict:
    """The merged state of one source from each shard's state of it (and, for a source that started
    another pass, where its pass before ended)."""
    if all(state.get("format") == MIXTURE_FORMAT for state in current):
        mixtures = [position_from_dict(state) for state in current]
        ended = [position_from_dict(state) if state is not None else None for state in previous]
        return merge(_one_pass(mixtures, ended, _finished_mixture)).to_dict()
    positions = [source_state.position_from_dict(state) for state in current]
    before = [source_state.position_from_dict(state) if state is not None else None for state in previous]
    return source_state.merge(_one_pass(positions, before, _finished_pass)).to_dict()


def _one_pass(current: list, previous: list, finished) -> list:
    """Each shard's position in the earliest pass any shard is in (stop="never" lets shards run
    apart): its own, or where its previous pass ended, or for a shard further ahead a position that
    has yielded its whole share of that pass. The passes after it start again in full: their samples
    that shards ahead had yielded are read again."""
    earliest = min(position.epoch for position in current)
    at_earliest = [p for p in current + previous if p is not None and p.epoch == earliest]
    aligned = []
    for now, before in zip(current, previous):
        if now.epoch == earliest:
            aligned.append(now)
        elif before is not None and before.epoch == earliest:
            aligned.append(before)
        else:
            aligned.append(finished(at_earliest, now, current + previous))
    return aligned


def _finished_pass(at_earliest: List[Position], ahead: Position, known: list) -> Position:
    template = at_earliest[0]
    listing = next((p.listing for p in known if p is not None and p.listing is not None), None)
    if listing is None:
        raise ValueError("corrupt MixedDataset state: a source ran passes ahead without a listing")
    left = listing.objects - sum(sum(run) for run in template.rounds)
    assert ahead.shard is not None and ahead.shards is not None  # positions of a shard (merge checks)
    # Skips of any shard: a skip is dropped by the merge only when every shard has used it.
    skips = set().union(*(set(p.skips) for p in at_earliest))
    return Position(
        template.epoch,
        template.settings,
        listing,
        template.rounds,
        ahead.shard,
        ahead.shards,
        yielded=len(range(ahead.shard, left, ahead.shards)),
        skips=tuple(sorted(skips)),
    )


def _finished_mixture(at_earliest: List[MixPosition], ahead: MixPosition, known: list) -> MixPosition:
    raise ValueError(
        "a MixedDataset inside a MixedDataset with stop='never' is two passes apart on some shards: their "
        "states cannot be merged; resume with the same ranks and workers (load each rank's own state)"
    )
