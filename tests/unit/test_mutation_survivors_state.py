"""Tests written for mutants of S3IterableDataset's saved states (_iterable_state.py, _epoch_iterator.py)
that survived tests/mutation/run.py: each pins a behaviour no other test checked (the mutant it kills
is named in the test's docstring). On the in-memory MockS3Client."""

from itertools import islice

import pytest

from s3torchconnector import S3IterableDataset
from s3torchconnector._s3client import MockS3Client

REGION = "us-east-1"
BUCKET = "bucket"


def dataset(n=12, shards=None, **options):
    """A dataset of objects p/0000... (each sample its key); as shard `shard` of `shards` when given."""
    made = S3IterableDataset.from_prefix(
        f"s3://{BUCKET}/p/", region=REGION, transform=lambda reader: reader.key, **options
    )
    client = MockS3Client(REGION, BUCKET)
    for i in range(n):
        client.add_object(f"p/{i:04d}", b"x")
    made._client = client
    if shards is not None:
        made._current_shard = lambda: shards
    return made


def stopped_state(n, shard, shards, taken, **options):
    iterator = iter(dataset(n, (shard, shards), enable_sharding=True, **options))
    list(islice(iterator, taken))
    return iterator.state_dict()


def test_a_datasets_own_state_names_itself_and_restores_its_epoch_counter():
    """EpochCounter.to_dict and dataset_state_from_dict: the dataset's state_dict() is the record of
    kind "dataset" with the epoch set_epoch gave and the passes made since; loaded into a new dataset
    (no pending resume), its next pass reads the epoch after them."""
    made = dataset(shuffle=True, seed=7)
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

    reference = dataset(shuffle=True, seed=7)
    reference.set_epoch(5)
    epoch_5 = list(reference)
    restored = dataset(shuffle=True, seed=7)
    restored.load_state_dict(state)
    assert list(restored) == epoch_5
    assert restored.state_dict()["passes"] == 3


@pytest.mark.parametrize("field, value", [("epoch", -1), ("passes", "2"), ("epoch", True)])
def test_a_dataset_state_with_a_bad_counter_is_refused(field, value):
    """dataset_state_from_dict checks the epoch and the passes it loads."""
    made = dataset()
    state = dict(made.state_dict(), **{field: value})
    with pytest.raises(ValueError) as refused:
        dataset().load_state_dict(state)
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
    resumed = dataset(13, (0, 1), enable_sharding=True, shuffle=True)
    resumed.load_state_dict(state)
    with pytest.raises(ValueError, match="12 objects when the state was saved, 13 now"):
        next(iter(resumed))
    same = dataset(12, (0, 1), enable_sharding=True, shuffle=True)
    same.load_state_dict(state)
    assert len(list(same)) == 12 - 4


def test_what_is_not_a_state_is_refused_with_what_to_pass():
    """_check_header: the whole message of a refusal (what was expected, and where states come from)."""
    with pytest.raises(ValueError) as refused:
        iter(dataset()).load_state_dict({"epoch": 1})
    assert str(refused.value) == (
        "not a state of an S3IterableDataset (it has no format 's3torchconnector.S3IterableDataset'): pass "
        "what state_dict() or S3IterableDataset.elastic_state() returned"
    )


def test_an_iterator_refuses_the_datasets_own_state():
    """position_from_dict: an iterator's load_state_dict given the dataset's state says which it got."""
    with pytest.raises(ValueError) as refused:
        iter(dataset()).load_state_dict(dataset().state_dict())
    assert str(refused.value) == "expected the position of an S3IterableDataset iterator, got its dataset state"


def position_state(**changes):
    iterator = iter(dataset(shuffle=True))
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
        iter(dataset(shuffle=True)).load_state_dict(position_state(**changes))
    assert str(refused.value) == f"corrupt S3IterableDataset state: {message}"


def test_a_position_with_a_broken_record_is_refused_as_corrupt():
    """position_from_dict: settings that do not fit, or rounds that are not lists of ints, are one
    ValueError that says the state is corrupt and why."""
    with pytest.raises(ValueError) as refused:
        iter(dataset()).load_state_dict(position_state(settings={"shuffle": True}))
    assert str(refused.value).startswith("corrupt S3IterableDataset state: ")
    assert "seed" in str(refused.value)
    with pytest.raises(ValueError, match=r"^corrupt S3IterableDataset state: "):
        iter(dataset()).load_state_dict(position_state(rounds=[["x"]]))


def test_a_position_without_skips_resumes():
    """position_from_dict: "skips" may be left out (no sample to skip)."""
    full = list(dataset(shuffle=True))
    state = position_state()
    del state["skips"]
    resumed = iter(dataset(shuffle=True))
    resumed.load_state_dict(state)
    assert list(resumed) == full[3:]


@pytest.mark.parametrize("shard, shards", [(2, 2), (3, 2), (0, None), (None, 2)])
def test_a_position_of_no_shard_of_its_layout_is_refused(shard, shards):
    """position_from_dict: the shard must be one of its layout's (0 to shards-1), and the two come
    together or not at all."""
    with pytest.raises(ValueError) as refused:
        iter(dataset(shuffle=True)).load_state_dict(position_state(shard=shard, shards=shards))
    assert str(refused.value) == f"corrupt S3IterableDataset state: shard {shard} of {shards}"


def test_states_are_plain_json_data():
    """Position.to_dict and EpochCounter.to_dict: a position (with earlier runs and part-read units to
    skip) and a dataset state holding it are dicts of str, int, bool, None and lists, with the fields
    of the format: saved as JSON and read back they are equal, and they load as before."""
    import json

    # An elastic state has earlier runs (rounds); a state saved after resuming it keeps them.
    elastic = S3IterableDataset.elastic_state([stopped_state(12, shard, 2, 2, shuffle=True) for shard in range(2)])
    made = dataset(12, (0, 1), enable_sharding=True, shuffle=True)
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

    holder = dataset(12, (0, 1), enable_sharding=True, shuffle=True)
    holder.load_state_dict(position)
    carried = holder.state_dict()
    assert carried["kind"] == "dataset" and carried["pending"] == position
    assert json.loads(json.dumps(carried)) == carried

    rest = dataset(12, (0, 1), enable_sharding=True, shuffle=True)
    rest.load_state_dict(json.loads(json.dumps(carried)))
    assert len(list(rest)) == 12 - 4 - 3


def test_merge_carries_the_part_read_samples_each_shard_owes():
    """merge: a tar shard read part-way by a stopped worker is resumed from its next sample, whoever
    reads it next; skips of units no worker reached are kept."""
    import io
    import tarfile

    def tar(names):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name in names:
                member = tarfile.TarInfo(f"{name}.txt")
                member.size = len(name)
                archive.addfile(member, io.BytesIO(name.encode()))
        return buffer.getvalue()

    def shards_dataset(shard, shards):
        made = S3IterableDataset.from_prefix(
            f"s3://{BUCKET}/t/",
            region=REGION,
            transform=lambda sample: sample["__key__"],
            shard_format="tar",
            enable_sharding=True,
        )
        client = MockS3Client(REGION, BUCKET)
        for unit in range(4):
            client.add_object(f"t/{unit}.tar", tar([f"u{unit}/{i}" for i in range(3)]))
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
    made = dataset(12, (1, 3), enable_sharding=True, shuffle=True)
    made.load_state_dict(elastic)
    saved = iter(made).state_dict()
    assert saved["listing"] == elastic["listing"] and (saved["shard"], saved["shards"]) == (1, 3)

    changed = dataset(13, (1, 3), enable_sharding=True, shuffle=True)
    changed.load_state_dict(saved)
    with pytest.raises(ValueError, match="12 objects when the state was saved, 13 now"):
        next(iter(changed))


def test_loading_a_state_into_a_started_pass_says_when_to_load_it():
    """EpochIterator.load_state_dict: the whole message."""
    iterator = iter(dataset())
    next(iterator)
    with pytest.raises(RuntimeError) as refused:
        iterator.load_state_dict(iter(dataset()).state_dict())
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
    iterator = iter(dataset(12, (1, 4), enable_sharding=True))
    next(iterator)
    resumed = iter(dataset(12, (1, 2), enable_sharding=True))
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


def _tar(names, damaged_header=None) -> bytes:
    """A tar of one '.txt' member per sample name (its bytes the name); ``damaged_header``: the index
    of a member whose header fails its checksum."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in names:
            member = tarfile.TarInfo(f"{name}.txt")
            member.size = len(name)
            archive.addfile(member, io.BytesIO(name.encode()))
    data = bytearray(buffer.getvalue())
    if damaged_header is not None:
        at = 1024 * damaged_header  # each member: a header block and one data block (names < 512 bytes)
        data[at + 148 : at + 156] = b"99999999"
    return bytes(data)


def tar_dataset(shards, **options):
    made = S3IterableDataset.from_prefix(
        f"s3://{BUCKET}/t/", region=REGION, transform=lambda sample: sample["__key__"], shard_format="tar", **options
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
        made = tar_dataset([_tar(names)], shuffle_buffer_size=6)
        made.set_epoch(epoch)
        return list(made)

    orders = [order(epoch) for epoch in range(3)]
    assert all(sorted(o) == names for o in orders)
    assert len({tuple(o) for o in orders}) == 3
    assert order(1) == orders[1]


def test_a_tar_shard_that_fails_part_way_fails_the_pass():
    """_with_last_flag: the samples before a damaged member are given, then its error, not a silent
    jump to the next shard (which would drop the rest of the shard)."""
    made = tar_dataset([_tar(["a/0", "a/1", "a/2"], damaged_header=2), _tar(["b/0"])])
    iterator = iter(made)
    assert next(iterator) == "a/0"
    with pytest.raises(ValueError, match="damaged member header"):
        next(iterator)
