"""S3IterableDataset's order and its saved states, on the in-memory MockS3Client (no server): the
order is a seeded function of the epoch, every object is read once per epoch over any layout of
shards, the shuffle buffer mixes within its size, a resumed pass continues exactly, an elastic
resume reads each unread object once, a state is plain JSON data in its documented format, and a
state that does not fit is refused with a message that says why. The same for the samples of tar
shards."""

from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mock_clients import mock_client_with_objects
from samples import key_of, key_of_sample, txt_shard

from s3torchconnector import S3IterableDataset
from s3torchconnector._s3client import MockS3Client

REGION = "us-east-1"
BUCKET = "bucket"


def dataset(n=23, *, extra_keys=(), **options):
    made = S3IterableDataset.from_prefix(f"s3://{BUCKET}/p/", region="us-east-1", transform=key_of, **options)
    client = MockS3Client("us-east-1", BUCKET)
    for key in [f"p/{i:04d}" for i in range(n)] + list(extra_keys):
        client.add_object(key, b"x")
    made._client = client
    return made


def as_shard(made, shard, shards):
    """The dataset as shard `shard` of `shards` would see it (rank x worker), without processes."""
    made._current_shard = lambda: (shard, shards)
    return made


def take(iterator, count):
    """Up to `count` items: fewer when the pass ends first."""
    return list(islice(iterator, count))


def test_unshuffled_order_is_the_listing_order():
    assert list(dataset(5)) == [f"p/{i:04d}" for i in range(5)]


def test_shuffled_order_is_drawn_from_seed_and_epoch():
    made = dataset(shuffle=True, seed=7)
    first = list(made)
    made.set_epoch(0)
    assert list(made) == first  # the same epoch again: the same order
    made.set_epoch(1)
    second = list(made)
    assert sorted(first) == sorted(second) == sorted(list(dataset()))
    assert first != second
    assert list(dataset(shuffle=True, seed=8)) != first
    assert first != sorted(first)


def test_a_pass_without_set_epoch_moves_on_to_the_next_epoch():
    """Persistent DataLoader workers iterate their own copy again, which set_epoch does not reach."""
    made = dataset(shuffle=True, seed=1)
    passes = [list(made), list(made)]
    made.set_epoch(1)
    assert passes[1] == list(made)


@pytest.mark.parametrize("shards", [1, 2, 3, 5, 9, 30])
@pytest.mark.parametrize("options", [{}, {"shuffle": True}, {"shuffle": True, "shuffle_buffer_size": 4}])
def test_every_object_once_per_epoch_over_any_number_of_shards(shards, options):
    seen = [key for shard in range(shards) for key in as_shard(dataset(enable_sharding=True, **options), shard, shards)]
    assert sorted(seen) == sorted(list(dataset()))


def test_the_shuffle_buffer_reorders_within_a_shard():
    plain = list(dataset(shuffle=True, seed=3))
    buffered = list(dataset(shuffle=True, seed=3, shuffle_buffer_size=8))
    assert sorted(plain) == sorted(buffered) and plain != buffered
    assert buffered == list(dataset(shuffle=True, seed=3, shuffle_buffer_size=8))


def test_a_shuffle_buffer_of_two_already_mixes_the_objects():
    """shard_positions: shuffle_buffer_size=2 reorders a worker's objects (0 and 1 keep the order)."""
    client = MockS3Client(REGION, BUCKET)
    uris = []
    for i in range(20):
        client.add_object(f"o{i:02d}", b"")
        uris.append(f"s3://{BUCKET}/o{i:02d}")

    def keys(buffer_size, seed):
        dataset = S3IterableDataset.from_objects(
            uris, region=REGION, transform=lambda reader: reader.key, shuffle_buffer_size=buffer_size, seed=seed
        )
        dataset._client = client
        return list(dataset)

    listed = [f"o{i:02d}" for i in range(20)]
    assert keys(0, 0) == keys(1, 0) == listed
    mixed = [keys(2, seed) for seed in range(4)]
    assert all(sorted(m) == listed for m in mixed) and any(m != listed for m in mixed)


def test_a_workers_shuffle_buffer_follows_the_seed_the_epoch_the_run_and_the_layout():
    """shard_positions: the buffer's order changes with the seed and the epoch (as a dataset shows),
    and with the run and the shard layout it serves; the same inputs give the same order."""
    from s3torchconnector._epochs.order import shard_positions

    def order(seed=0, epoch=0, run=0, shards=1):
        return tuple(shard_positions(range(60), 0, shards, buffer_size=6, seed=seed, epoch=epoch, run=run))

    assert order() == order()
    assert len({order(seed=seed) for seed in range(4)}) == 4
    assert len({order(epoch=epoch) for epoch in range(4)}) == 4
    assert len({order(run=run) for run in range(4)}) == 4
    # Shard 0 of 2 and of 3 deal different positions (in increasing order); while both streams still
    # flow through the buffer (their first 10), the patterns it draws for them differ too.
    patterns = {tuple(sorted(range(10), key=o.__getitem__)) for o in (order(shards=2)[:10], order(shards=3)[:10])}
    assert len(patterns) == 2


def test_the_shards_of_one_layout_shuffle_differently():
    """shard_positions: each shard's buffer draws its own order, not the same pattern over other items."""
    from s3torchconnector._epochs.order import shard_positions

    def pattern(shard):
        order = list(shard_positions(range(60), shard, 2, buffer_size=6, seed=0, epoch=0, run=0))[:20]
        return tuple(sorted(range(20), key=order.__getitem__))

    assert pattern(0) != pattern(1)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 40),
    shards=st.integers(1, 4),
    data=st.data(),
    shuffle=st.booleans(),
    buffer_size=st.sampled_from([0, 2, 5]),
)
def test_a_resumed_pass_continues_exactly(n, shards, data, shuffle, buffer_size):
    options = dict(enable_sharding=True, shuffle=shuffle, seed=11, shuffle_buffer_size=buffer_size)
    shard = data.draw(st.integers(0, shards - 1))
    full = list(as_shard(dataset(n, **options), shard, shards))
    stop = data.draw(st.integers(0, len(full)))
    stopped = iter(as_shard(dataset(n, **options), shard, shards))
    before = take(stopped, stop)
    state = stopped.state_dict()

    resumed = iter(as_shard(dataset(n, **options), shard, shards))
    resumed.load_state_dict(state)
    assert before + list(resumed) == full


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 40),
    layouts=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    data=st.data(),
    shuffle=st.booleans(),
    buffer_size=st.sampled_from([0, 3]),
)
def test_elastic_resumes_read_every_unread_object_once(n, layouts, data, shuffle, buffer_size):
    """Runs of one epoch stop part-way over one layout of shards and resume over another, as often as
    the example says; the last runs to the end. In all, every object is read exactly once."""
    options = dict(enable_sharding=True, shuffle=shuffle, seed=5, shuffle_buffer_size=buffer_size)
    seen = run_elastically(
        lambda: dataset(n, **options), layouts, lambda shards: data.draw(st.integers(0, n // shards))
    )
    assert sorted(seen) == sorted(list(dataset(n)))


def run_elastically(make, layouts, stop_after):
    """Runs of one epoch, one per layout (a number of shards): each shard of a run takes
    ``stop_after(shards)`` items and saves its state, and the next run resumes from their merge
    (nested as in a loader's state); the last run reads to the end. Returns all items read."""
    seen, state = [], None
    for run, shards in enumerate(layouts):
        last = run == len(layouts) - 1
        states = []
        for shard in range(shards):
            made = as_shard(make(), shard, shards)
            if state is not None:
                made.load_state_dict(state)
            iterator = iter(made)
            seen += list(iterator) if last else take(iterator, stop_after(shards))
            states.append({"rank": {"worker": iterator.state_dict()}})
        state = None if last else S3IterableDataset.elastic_state(states)
    return seen


def test_an_elastic_resume_keeps_the_epochs_order():
    order = list(dataset(shuffle=True, seed=2))
    stopped = iter(as_shard(dataset(shuffle=True, seed=2, enable_sharding=True), 0, 1))
    before = take(stopped, 5)
    state = S3IterableDataset.elastic_state([stopped.state_dict()])
    shards = [list(as_shard(dataset(shuffle=True, seed=2, enable_sharding=True), s, 2)) for s in range(2)]
    for made in shards:
        assert made == sorted(made, key=order.index)
    resumed = [as_shard(dataset(shuffle=True, seed=2, enable_sharding=True), s, 2) for s in range(2)]
    for made in resumed:
        made.load_state_dict(state)
    after = [list(made) for made in resumed]
    assert sorted(before + after[0] + after[1]) == sorted(order)
    assert after[0] == order[5::2] and after[1] == order[6::2]


def test_the_state_is_small_and_holds_no_object_names():
    iterator = iter(dataset(2000, shuffle=True))
    take(iterator, 10)
    state = iterator.state_dict()
    assert "p/0" not in repr(state)
    assert len(repr(state)) < 400


def test_the_dataset_state_carries_a_pending_resume_and_the_epochs_after_it():
    made = dataset(shuffle=True, seed=4)
    made.set_epoch(3)
    iterator = iter(made)
    take(iterator, 4)
    restored = dataset(shuffle=True, seed=4)
    restored.load_state_dict(iterator.state_dict())
    carried = dataset(shuffle=True, seed=4)
    carried.load_state_dict(restored.state_dict())  # the pending resume travels in the dataset's state
    reference = dataset(shuffle=True, seed=4)
    reference.set_epoch(3)
    epoch_3 = list(reference)
    reference.set_epoch(4)
    epoch_4 = list(reference)
    assert list(carried) == epoch_3[4:]
    assert list(carried) == epoch_4  # the pass after the resumed one reads the next epoch


@pytest.fixture
def client() -> MockS3Client:
    """Five objects k0 to k4, of 1 to 5 bytes."""
    return mock_client_with_objects(REGION, BUCKET)


def test_set_epoch_after_load_state_dict_still_resumes(client):
    """S3IterableDataset.set_epoch keeps a loaded, not yet resumed position: the usual loop calls
    set_epoch at the top of each epoch, after restoring the checkpoint."""
    uris = [f"s3://{BUCKET}/k{i}" for i in range(5)]

    def dataset():
        made = S3IterableDataset.from_objects(uris, region=REGION, transform=lambda reader: reader.key)
        made._client = client
        return made

    first = dataset()
    first.set_epoch(3)
    iterator = iter(first)
    assert [next(iterator), next(iterator)] == ["k0", "k1"]
    saved = iterator.state_dict()

    second = dataset()
    second.load_state_dict(saved)
    second.set_epoch(3)
    assert list(second) == ["k2", "k3", "k4"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seed": 2}, "seed=1, and this one has seed=2"),
        ({"shuffle": False}, "shuffle=True, and this one has shuffle=False"),
        ({"shuffle_buffer_size": 3}, "shuffle_buffer_size=0"),
    ],
)
def test_a_state_of_other_settings_is_refused(change, message):
    iterator = iter(dataset(shuffle=True, seed=1))
    take(iterator, 3)
    state = iterator.state_dict()
    with pytest.raises(ValueError, match=message):
        iter(dataset(**{"shuffle": True, "seed": 1, **change})).load_state_dict(state)


def test_a_state_of_another_listing_is_refused():
    iterator = iter(dataset(shuffle=True))
    take(iterator, 3)
    state = iterator.state_dict()
    for changed, what in (
        (dataset(24, shuffle=True), "23 objects when the state was saved, 24 now"),
        (dataset(22, extra_keys=["p/zz"], shuffle=True), "other keys"),
    ):
        resumed = iter(changed)
        resumed.load_state_dict(state)
        with pytest.raises(ValueError, match=what) as refused:
            next(resumed)
        assert f"s3://{BUCKET}/p/" in str(refused.value)


def test_a_state_of_another_shard_points_to_elastic_state():
    iterator = iter(as_shard(dataset(enable_sharding=True), 1, 4))
    take(iterator, 2)
    resumed = iter(as_shard(dataset(enable_sharding=True), 1, 2))
    resumed.load_state_dict(iterator.state_dict())
    with pytest.raises(ValueError, match="shard 1 of 4.*shard 1 of 2.*elastic_state"):
        next(resumed)


@pytest.mark.parametrize(
    "state, message",
    [
        ({"epoch": 1}, "not a state of an S3IterableDataset"),
        ({"format": "s3torchconnector.S3IterableDataset", "version": 99}, "version 99"),
        ("garbage", "not a state"),
    ],
)
def test_what_is_not_a_state_is_refused(state, message):
    with pytest.raises(ValueError, match=message):
        iter(dataset()).load_state_dict(state)


def test_a_state_is_loaded_before_the_first_item():
    iterator = iter(dataset())
    next(iterator)
    with pytest.raises(RuntimeError, match="before the first item"):
        iterator.load_state_dict(iter(dataset()).state_dict())


def run_states(shards, stops, **options):
    states = []
    for shard in range(shards):
        iterator = iter(as_shard(dataset(enable_sharding=True, **options), shard, shards))
        take(iterator, stops[shard])
        states.append(iterator.state_dict())
    return states


def test_elastic_state_needs_every_shard_once():
    states = run_states(3, [1, 2, 1])
    with pytest.raises(ValueError, match=r"shards \[1\] of 3 are missing"):
        S3IterableDataset.elastic_state([states[0], states[2]])
    with pytest.raises(ValueError, match="two states of shard 0"):
        S3IterableDataset.elastic_state([states[0], states[0], states[1], states[2]])
    with pytest.raises(ValueError, match="no S3IterableDataset state"):
        S3IterableDataset.elastic_state([{"something": "else"}])


def test_elastic_state_refuses_states_of_different_epochs():
    states = run_states(2, [1, 1])
    other = dataset(enable_sharding=True)
    other.set_epoch(5)
    iterator = iter(as_shard(other, 1, 2))
    take(iterator, 1)
    with pytest.raises(ValueError, match="not of one run of one epoch"):
        S3IterableDataset.elastic_state([states[0], iterator.state_dict()])


@pytest.mark.parametrize(
    "options, error",
    [
        ({"shuffle": 1}, TypeError),
        ({"seed": "7"}, TypeError),
        ({"seed": True}, TypeError),
        ({"shuffle_buffer_size": -1}, ValueError),
    ],
)
def test_bad_shuffle_arguments_fail_at_construction(options, error):
    with pytest.raises(error):
        dataset(**options)


@pytest.mark.parametrize("epoch", [-1, 1.0, True, "2"])
def test_bad_epochs_are_refused(epoch):
    with pytest.raises(ValueError, match="epoch"):
        dataset().set_epoch(epoch)


# ---------------------------------------------------------------- saved states: the format, and each refusal's whole message
#
# On 12 objects unless a test says otherwise.


def stopped_state(n, shard, shards, taken, **options):
    iterator = iter(as_shard(dataset(n, enable_sharding=True, **options), shard, shards))
    list(islice(iterator, taken))
    return iterator.state_dict()


def test_a_datasets_own_state_names_itself_and_restores_its_epoch_counter():
    """EpochCounter.to_dict and StateFormat.counter_from_dict: the dataset's state_dict() is the record of
    kind "dataset" with the epoch set_epoch gave and the passes made since; loaded into a new dataset
    (no pending resume), its next pass reads the epoch after them."""
    made = dataset(12, shuffle=True, seed=7)
    made.set_epoch(3)
    list(made)  # epoch 3
    list(made)  # epoch 4
    state = made.state_dict()
    assert state == {
        "format": "s3torchconnector.S3IterableDataset",
        "version": 1,
        "kind": "dataset",
        "epoch": 3,
        "passes": 2,
        "pending": None,
    }

    reference = dataset(12, shuffle=True, seed=7)
    reference.set_epoch(5)
    epoch_5 = list(reference)
    restored = dataset(12, shuffle=True, seed=7)
    restored.load_state_dict(state)
    assert list(restored) == epoch_5
    assert restored.state_dict()["passes"] == 3


@pytest.mark.parametrize("field, value", [("epoch", -1), ("passes", "2"), ("epoch", True)])
def test_a_dataset_state_with_a_bad_counter_is_refused(field, value):
    """StateFormat.counter_from_dict checks the epoch and the passes it loads."""
    made = dataset(12)
    state = dict(made.state_dict(), **{field: value})
    with pytest.raises(ValueError) as refused:
        dataset(12).load_state_dict(state)
    assert str(refused.value) == (f"corrupt S3IterableDataset state: {field} must be a non-negative int, got {value!r}")


def test_a_resume_over_other_objects_says_how_to_resume():
    """check_listing: the whole message, with what changed and what to do."""
    iterator = iter(dataset(5, shuffle=True))
    list(islice(iterator, 2))
    resumed = iter(dataset(6, shuffle=True))
    resumed.load_state_dict(iterator.state_dict())
    with pytest.raises(ValueError) as refused:
        next(resumed)
    assert str(refused.value) == (
        f"this state belongs to another dataset, or the listing of s3://{BUCKET}/p/ changed since it was saved: "
        "5 objects when the state was saved, 6 now. Resume over the same objects (a manifest keeps a listing fixed)"
    )


def _merge_refusal(states) -> str:
    with pytest.raises(ValueError) as refused:
        S3IterableDataset.elastic_state(states)
    return str(refused.value)


def test_elastic_state_refusals_say_what_is_wrong_and_what_to_pass():
    """merge: each refusal's whole message (the reason and what to pass instead)."""
    two = [stopped_state(12, shard, 2, 1) for shard in range(2)]
    assert _merge_refusal([{"not": "a state"}]) == (
        "no S3IterableDataset state found: pass the saved loader states of every rank"
    )
    assert _merge_refusal([two[0], stopped_state(12, 1, 2, 1, seed=1)]) == (
        "the states are not of one run of one epoch (their epochs, settings or earlier runs differ): "
        "pass the states that all ranks saved at the same step"
    )
    assert _merge_refusal([S3IterableDataset.elastic_state(two)]) == (
        "a state made by elastic_state() cannot be merged again: resume from it first"
    )
    assert _merge_refusal([two[0], stopped_state(12, 1, 3, 1)]) in (
        "the states come from layouts of 2 and 3 shards",
        "the states come from layouts of 3 and 2 shards",
    )
    assert _merge_refusal([two[0], two[0], two[1]]) == (
        "two states of shard 0 of 2: pass each rank's state once (with enable_sharding=False every worker "
        "reads every object, so there is nothing to merge)"
    )
    assert _merge_refusal([stopped_state(12, 0, 3, 1)]) == (
        "the states of shards [1, 2] of 3 are missing: pass the saved loader states of every rank (each "
        "holds its workers' states)"
    )
    assert _merge_refusal([two[0], stopped_state(13, 1, 2, 1)]) == (
        "the states were saved against different listings: the dataset changed between them"
    )


def test_an_elastic_state_still_refuses_other_objects():
    """merge keeps the listing the states were saved against: a job resuming the merged state over
    other objects is refused, as a resume of one state is."""
    state = S3IterableDataset.elastic_state([stopped_state(12, shard, 2, 2, shuffle=True) for shard in range(2)])
    assert state["listing"] is not None and state["listing"]["objects"] == 12
    resumed = as_shard(dataset(13, enable_sharding=True, shuffle=True), 0, 1)
    resumed.load_state_dict(state)
    with pytest.raises(ValueError, match="12 objects when the state was saved, 13 now"):
        next(iter(resumed))
    same = as_shard(dataset(12, enable_sharding=True, shuffle=True), 0, 1)
    same.load_state_dict(state)
    assert len(list(same)) == 12 - 4


def test_what_is_not_a_state_is_refused_with_what_to_pass():
    """_check_header: the whole message of a refusal (what was expected, and where states come from)."""
    with pytest.raises(ValueError) as refused:
        iter(dataset(12)).load_state_dict({"epoch": 1})
    assert str(refused.value) == (
        "not a state of an S3IterableDataset (it has no format 's3torchconnector.S3IterableDataset'): pass "
        "what state_dict() or S3IterableDataset.elastic_state() returned"
    )


def test_an_iterator_refuses_the_datasets_own_state():
    """position_from_dict: an iterator's load_state_dict given the dataset's state says which it got."""
    with pytest.raises(ValueError) as refused:
        iter(dataset(12)).load_state_dict(dataset(12).state_dict())
    assert str(refused.value) == "expected the position of an S3IterableDataset iterator, got its dataset state"


def position_state(**changes):
    iterator = iter(dataset(12, shuffle=True))
    list(islice(iterator, 3))
    return dict(iterator.state_dict(), **changes)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epoch": None}, "epoch must be a non-negative int, got None"),
        ({"yielded": None}, "yielded must be a non-negative int, got None"),
        ({"yielded": -1}, "yielded must be a non-negative int, got -1"),
        ({"yielded": "3"}, "yielded must be a non-negative int, got '3'"),
        ({"partial": False}, "partial must be a non-negative int, got False"),
        ({"shard": -1}, "shard must be a non-negative int, got -1"),
    ],
)
def test_a_position_with_a_bad_count_is_refused(changes, message):
    """_non_negative_int (through position_from_dict): a count that is missing, negative, not an int, or
    a bool is refused, naming the field and the value."""
    with pytest.raises(ValueError) as refused:
        iter(dataset(12, shuffle=True)).load_state_dict(position_state(**changes))
    assert str(refused.value) == f"corrupt S3IterableDataset state: {message}"


def test_a_position_with_a_broken_record_is_refused_as_corrupt():
    """position_from_dict: settings that do not fit, or rounds that are not lists of ints, are one
    ValueError that says the state is corrupt and why."""
    with pytest.raises(ValueError) as refused:
        iter(dataset(12)).load_state_dict(position_state(settings={"shuffle": True}))
    assert str(refused.value).startswith("corrupt S3IterableDataset state: ")
    assert "seed" in str(refused.value)
    with pytest.raises(ValueError, match=r"^corrupt S3IterableDataset state: "):
        iter(dataset(12)).load_state_dict(position_state(rounds=[["x"]]))


def test_a_position_without_skips_resumes():
    """position_from_dict: "skips" may be left out (no sample to skip)."""
    full = list(dataset(12, shuffle=True))
    state = position_state()
    del state["skips"]
    resumed = iter(dataset(12, shuffle=True))
    resumed.load_state_dict(state)
    assert list(resumed) == full[3:]


@pytest.mark.parametrize("shard, shards", [(2, 2), (3, 2), (0, None), (None, 2)])
def test_a_position_of_no_shard_of_its_layout_is_refused(shard, shards):
    """position_from_dict: the shard must be one of its layout's (0 to shards-1), and the two come
    together or not at all."""
    with pytest.raises(ValueError) as refused:
        iter(dataset(12, shuffle=True)).load_state_dict(position_state(shard=shard, shards=shards))
    assert str(refused.value) == f"corrupt S3IterableDataset state: shard {shard} of {shards}"


def test_states_are_plain_json_data():
    """Position.to_dict and EpochCounter.to_dict: a position (with earlier runs and part-read units to
    skip) and a dataset state holding it are dicts of str, int, bool, None and lists, with the fields
    of the format: saved as JSON and read back they are equal, and they load as before."""
    import json

    # An elastic state has earlier runs (rounds); a state saved after resuming it keeps them.
    elastic = S3IterableDataset.elastic_state([stopped_state(12, shard, 2, 2, shuffle=True) for shard in range(2)])
    made = as_shard(dataset(12, enable_sharding=True, shuffle=True), 0, 1)
    made.load_state_dict(elastic)
    iterator = iter(made)
    list(islice(iterator, 3))
    position = iterator.state_dict()
    assert set(position) == {
        "format",
        "version",
        "kind",
        "epoch",
        "settings",
        "listing",
        "rounds",
        "shard",
        "shards",
        "yielded",
        "current",
        "partial",
        "skips",
    }
    assert position["kind"] == "position" and position["rounds"] == [[2, 2]] and position["skips"] == []
    assert json.loads(json.dumps(position)) == position

    holder = as_shard(dataset(12, enable_sharding=True, shuffle=True), 0, 1)
    holder.load_state_dict(position)
    carried = holder.state_dict()
    assert carried["kind"] == "dataset" and carried["pending"] == position
    assert json.loads(json.dumps(carried)) == carried

    rest = as_shard(dataset(12, enable_sharding=True, shuffle=True), 0, 1)
    rest.load_state_dict(json.loads(json.dumps(carried)))
    assert len(list(rest)) == 12 - 4 - 3


def test_a_listings_fingerprint_is_the_formats():
    """LazyListing.fingerprint: the listing a position was saved against is its object count and the
    first 16 hex digits of the SHA-256 of its keys, each followed by a NUL: version 1 of the format,
    so that a state saved by another release of that version resumes (and is checked) here."""
    import hashlib

    keys = b"".join(f"p/{i:04d}".encode() + b"\0" for i in range(5))
    expected = {"objects": 5, "digest": hashlib.sha256(keys).hexdigest()[:16]}
    iterator = iter(dataset(5))  # listed one object at a time, the rest at the state_dict
    next(iterator)
    assert iterator.state_dict()["listing"] == expected
    shuffled = iter(dataset(5, shuffle=True))  # listed whole before the first object
    next(shuffled)
    assert shuffled.state_dict()["listing"] == expected


def test_a_state_saved_before_the_first_item_of_an_elastic_resume_keeps_its_listing():
    """EpochIterator.state_dict of a pass that loaded an elastic state and has not started: the state
    it saves still holds the listing, so resuming it over other objects is refused."""
    elastic = S3IterableDataset.elastic_state([stopped_state(12, shard, 2, 2, shuffle=True) for shard in range(2)])
    made = as_shard(dataset(12, enable_sharding=True, shuffle=True), 1, 3)
    made.load_state_dict(elastic)
    saved = iter(made).state_dict()
    assert saved["listing"] == elastic["listing"] and (saved["shard"], saved["shards"]) == (1, 3)

    changed = as_shard(dataset(13, enable_sharding=True, shuffle=True), 1, 3)
    changed.load_state_dict(saved)
    with pytest.raises(ValueError, match="12 objects when the state was saved, 13 now"):
        next(iter(changed))


def test_loading_a_state_into_a_started_pass_says_when_to_load_it():
    """EpochIterator.load_state_dict: the whole message."""
    iterator = iter(dataset(12))
    next(iterator)
    with pytest.raises(RuntimeError) as refused:
        iterator.load_state_dict(iter(dataset(12)).state_dict())
    assert str(refused.value) == "load_state_dict() must come before the first item of the pass is taken"


def test_a_plain_pass_reads_while_it_lists():
    """EpochIterator._start: without shuffle (and no resume) the first sample comes before the listing
    is done, so a pass over a huge prefix starts at once; a shuffled pass lists everything first."""
    from s3torchconnector._s3bucket_key_data import S3BucketKeyData

    client = MockS3Client(REGION, BUCKET)
    for i in range(300):
        client.add_object(f"p/{i:04d}", b"x")
    pulled = []

    def objects(_client):
        for i in range(300):
            pulled.append(i)
            yield S3BucketKeyData(BUCKET, f"p/{i:04d}")

    def first(**options):
        del pulled[:]
        made = S3IterableDataset(REGION, objects, transform=lambda reader: reader.key, **options)
        made._client = client
        return next(iter(made))

    assert first() == "p/0000" and len(pulled) < 300
    first(shuffle=True)
    assert len(pulled) == 300


def test_a_state_of_another_layout_says_how_to_resume_with_it():
    """EpochIterator._start: the whole message of a state loaded by another shard of another layout."""
    iterator = iter(as_shard(dataset(12, enable_sharding=True), 1, 4))
    next(iterator)
    resumed = iter(as_shard(dataset(12, enable_sharding=True), 1, 2))
    resumed.load_state_dict(iterator.state_dict())
    with pytest.raises(ValueError) as refused:
        next(resumed)
    assert str(refused.value) == (
        "this state was saved by shard 1 of 4 (ranks x DataLoader workers), and this worker is shard 1 of 2: "
        "to resume with another number of ranks or workers, load S3IterableDataset.elastic_state(states of "
        "every rank)"
    )


def test_a_state_between_objects_holds_no_part_read_object():
    """EpochIterator._finish_unit: once an object's sample is taken, the state says nothing is part-read."""
    iterator = iter(dataset(5))
    list(islice(iterator, 2))
    state = iterator.state_dict()
    assert (state["yielded"], state["current"], state["partial"], state["skips"]) == (2, None, 0, [])


# ---------------------------------------------------------------- tar shards: samples inside objects


def sample_key(sample):
    assert sample["txt"] == sample["__key__"].encode()  # the member's bytes came with it
    return sample["__key__"]


def tar_dataset(shard_sizes, **options):
    made = S3IterableDataset.from_prefix(
        f"s3://{BUCKET}/shards/", region="us-east-1", transform=sample_key, shard_format="tar", **options
    )
    client = MockS3Client("us-east-1", BUCKET)
    for shard, size in enumerate(shard_sizes):
        client.add_object(f"shards/{shard:03d}.tar", txt_shard([f"s{shard:03d}/{i}" for i in range(size)]))
    made._client = client
    return made


def all_samples(shard_sizes):
    return sorted(f"s{shard:03d}/{i}" for shard, size in enumerate(shard_sizes) for i in range(size))


def test_tar_shards_yield_their_samples_in_order():
    assert list(tar_dataset([2, 0, 3])) == ["s000/0", "s000/1", "s002/0", "s002/1", "s002/2"]


def test_tar_shards_shuffle_by_shard_then_within_a_shard():
    sizes = [5] * 8
    plain = list(tar_dataset(sizes))
    by_shard = list(tar_dataset(sizes, shuffle=True, seed=1))
    mixed = list(tar_dataset(sizes, shuffle=True, seed=1, shuffle_buffer_size=3))
    assert sorted(by_shard) == sorted(mixed) == plain
    shard_order = [key[:4] for key in by_shard[::5]]
    assert by_shard == [f"{shard}/{i}" for shard in shard_order for i in range(5)]  # shards stay whole
    assert mixed != by_shard and [key[:4] for key in mixed[::5]] == shard_order  # mixed within each


def test_a_shuffle_buffer_of_two_already_mixes_a_shards_samples():
    """shuffled_samples: any buffer larger than one reorders (one, or none, keeps the order)."""
    from s3torchconnector._epochs.order import shuffled_samples

    def order(size, position):
        return list(shuffled_samples(range(30), size, seed=0, epoch=0, position=position))

    assert order(0, 0) == order(1, 0) == list(range(30))
    mixed = [order(2, position) for position in range(5)]
    assert all(sorted(m) == list(range(30)) for m in mixed)
    assert any(m != list(range(30)) for m in mixed)


def test_a_shards_sample_order_follows_the_seed_the_epoch_and_the_shards_position():
    """shuffled_samples: the same inputs give the same order (a resume can skip what was read), and
    another seed, epoch or listing position gives another order."""
    from s3torchconnector._epochs.order import shuffled_samples

    def order(seed=0, epoch=0, position=0):
        return tuple(shuffled_samples(range(40), 8, seed=seed, epoch=epoch, position=position))

    assert order() == order()
    assert len({order(seed=seed) for seed in range(4)}) == 4
    assert len({order(epoch=epoch) for epoch in range(4)}) == 4
    assert len({order(position=position) for position in range(4)}) == 4


def test_a_shuffle_buffer_holds_at_most_its_size():
    """_buffer_shuffle (through shuffled_samples): with a buffer of 4, the first sample comes out when
    the 5th is read, and no sample moves earlier by more than 3 places."""
    from s3torchconnector._epochs.order import shuffled_samples

    pulled = []

    def samples():
        for i in range(50):
            pulled.append(i)
            yield i

    out = shuffled_samples(samples(), 4, seed=0, epoch=0, position=0)
    next(out)
    assert len(pulled) == 5
    for seed in range(20):
        order = list(shuffled_samples(range(50), 4, seed=seed, epoch=0, position=0))
        assert sorted(order) == list(range(50))
        assert all(item <= place + 3 for place, item in enumerate(order))


tar_layouts = st.lists(st.integers(0, 6), min_size=0, max_size=8)


@settings(max_examples=50, deadline=None)
@given(
    sizes=tar_layouts,
    shards=st.integers(1, 3),
    data=st.data(),
    shuffle=st.booleans(),
    buffer_size=st.sampled_from([0, 3]),
)
def test_a_resumed_tar_pass_continues_from_the_exact_sample(sizes, shards, data, shuffle, buffer_size):
    options = dict(enable_sharding=True, shuffle=shuffle, seed=9, shuffle_buffer_size=buffer_size)
    shard = data.draw(st.integers(0, shards - 1))
    full = list(as_shard(tar_dataset(sizes, **options), shard, shards))
    stopped = iter(as_shard(tar_dataset(sizes, **options), shard, shards))
    before = take(stopped, data.draw(st.integers(0, len(full))))
    resumed = iter(as_shard(tar_dataset(sizes, **options), shard, shards))
    resumed.load_state_dict(stopped.state_dict())
    assert before + list(resumed) == full


@settings(max_examples=50, deadline=None)
@given(
    sizes=tar_layouts,
    layouts=st.lists(st.integers(1, 4), min_size=2, max_size=3),
    data=st.data(),
    shuffle=st.booleans(),
    buffer_size=st.sampled_from([0, 2]),
)
def test_elastic_tar_resumes_read_every_unread_sample_once(sizes, layouts, data, shuffle, buffer_size):
    """Part-read shards are finished by whichever new worker gets them, from the next sample."""
    options = dict(enable_sharding=True, shuffle=shuffle, seed=4, shuffle_buffer_size=buffer_size)
    seen = run_elastically(lambda: tar_dataset(sizes, **options), layouts, lambda shards: data.draw(st.integers(0, 8)))
    assert sorted(seen) == all_samples(sizes)


def test_a_state_of_objects_does_not_resume_tar_shards():
    iterator = iter(dataset())
    take(iterator, 2)
    with pytest.raises(ValueError, match="shard_format=None, and this one has shard_format='tar'"):
        iter(tar_dataset([3])).load_state_dict(iterator.state_dict())


def test_an_unknown_shard_format_fails_at_construction():
    with pytest.raises(ValueError, match="shard_format"):
        dataset(shard_format="zip")


def test_merge_carries_the_part_read_samples_each_shard_owes():
    """merge: a tar shard read part-way by a stopped worker is resumed from its next sample, whoever
    reads it next; skips of units no worker reached are kept."""

    def shards_dataset(shard, shards):
        made = S3IterableDataset.from_prefix(
            f"s3://{BUCKET}/t/",
            region=REGION,
            transform=key_of_sample,
            shard_format="tar",
            enable_sharding=True,
        )
        client = MockS3Client(REGION, BUCKET)
        for unit in range(4):
            client.add_object(f"t/{unit}.tar", txt_shard([f"u{unit}/{i}" for i in range(3)]))
        made._client = client
        made._current_shard = lambda: (shard, shards)
        return made

    states = []
    for shard in range(2):
        iterator = iter(shards_dataset(shard, 2))
        list(islice(iterator, 2))  # two samples of this shard's first unit (of three)
        states.append(iterator.state_dict())
    assert [(state["current"], state["partial"]) for state in states] == [(0, 2), (1, 2)]
    merged = S3IterableDataset.elastic_state(states)
    assert merged["skips"] == [[0, 2], [1, 2]]
    resumed = shards_dataset(0, 1)
    resumed.load_state_dict(merged)
    assert list(resumed) == ["u0/2", "u1/2"] + [f"u{unit}/{i}" for unit in (2, 3) for i in range(3)]


def dataset_of_shards(shards, **options):
    """A tar shard dataset over these shards' bytes, each sample its key."""
    made = S3IterableDataset.from_prefix(
        f"s3://{BUCKET}/t/", region=REGION, transform=key_of_sample, shard_format="tar", **options
    )
    client = MockS3Client(REGION, BUCKET)
    for number, data in enumerate(shards):
        client.add_object(f"t/{number}.tar", data)
    made._client = client
    return made


def test_the_samples_of_a_tar_shard_are_shuffled_anew_each_epoch():
    """EpochIterator._start passes the epoch on: a shard's shuffle buffer draws another order of its
    samples in another epoch (as it does for another seed), the same order for the same epoch."""
    names = [f"s/{i:02d}" for i in range(30)]

    def order(epoch):
        made = dataset_of_shards([txt_shard(names)], shuffle_buffer_size=6)
        made.set_epoch(epoch)
        return list(made)

    orders = [order(epoch) for epoch in range(3)]
    assert all(sorted(o) == names for o in orders)
    assert len({tuple(o) for o in orders}) == 3
    assert order(1) == orders[1]


def test_a_tar_shard_that_fails_part_way_fails_the_pass():
    """_with_last_flag: the samples before a damaged member are given, then its error, not a silent
    jump to the next shard (which would drop the rest of the shard)."""
    made = dataset_of_shards([txt_shard(["a/0", "a/1", "a/2"], damaged_header=2), txt_shard(["b/0"])])
    iterator = iter(made)
    assert next(iterator) == "a/0"
    with pytest.raises(ValueError, match="damaged member header"):
        next(iterator)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 255, 256, 257, 1000, 65_537, 100_003])
@pytest.mark.parametrize("draws_before", [0, 1, 623, 624, 5000])
def test_the_epoch_order_is_random_shuffles_permutation(n, draws_before):
    """epoch_order's native shuffle: the permutation random.Random.shuffle makes from the same state,
    wherever in its 624 words the generator stands, so that every rank and worker, and a state saved
    by a release that shuffled in Python, agree on the order of an epoch."""
    from s3torchconnector import _native
    from s3torchconnector._epochs import order

    generator = order._rng(draws_before, n)
    for _ in range(draws_before):
        generator.getrandbits(32)
    state = generator.getstate()[1]
    expected = list(range(n))
    generator.shuffle(expected)
    assert list(_native.shuffled_positions(n, state)) == expected

    seeded = order._rng(3, 4)
    expected = list(range(n))
    seeded.shuffle(expected)
    assert list(order.epoch_order(n, shuffle=True, seed=3, epoch=4)) == expected


def test_a_generator_state_that_is_not_one_is_refused():
    from s3torchconnector import _native

    with pytest.raises(ValueError, match="not a Mersenne Twister state"):
        _native.shuffled_positions(10, [1, 2, 3])
    with pytest.raises(ValueError, match="mt_state must be"):
        _native.shuffled_positions(10, [])
