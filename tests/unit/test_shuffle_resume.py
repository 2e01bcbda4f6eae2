"""S3IterableDataset's order and its saved states, on the in-memory MockS3Client (no server): the
order is a seeded function of the epoch, every object is read once per epoch over any layout of
shards, a resumed pass continues exactly, an elastic resume reads each unread object once, and a
state that does not fit is refused with a message that says why."""

import io
import tarfile
from itertools import islice

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3torchconnector import S3IterableDataset
from s3torchconnector._s3client import MockS3Client

BUCKET = "bucket"


def key_of(reader):
    return reader.key


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


# ---------------------------------------------------------------- tar shards: samples inside objects


def tar_bytes(samples):
    """A tar of one '.txt' member per sample name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in samples:
            member = tarfile.TarInfo(f"{name}.txt")
            member.size = len(name)
            tar.addfile(member, io.BytesIO(name.encode()))
    return buffer.getvalue()


def sample_key(sample):
    assert sample["txt"] == sample["__key__"].encode()  # the member's bytes came with it
    return sample["__key__"]


def tar_dataset(shard_sizes, **options):
    made = S3IterableDataset.from_prefix(
        f"s3://{BUCKET}/shards/", region="us-east-1", transform=sample_key, shard_format="tar", **options
    )
    client = MockS3Client("us-east-1", BUCKET)
    for shard, size in enumerate(shard_sizes):
        client.add_object(f"shards/{shard:03d}.tar", tar_bytes([f"s{shard:03d}/{i}" for i in range(size)]))
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


@pytest.mark.parametrize("n", [0, 1, 2, 3, 255, 256, 257, 1000, 65_537, 100_003])
@pytest.mark.parametrize("draws_before", [0, 1, 623, 624, 5000])
def test_the_epoch_order_is_random_shuffles_permutation(n, draws_before):
    """epoch_order's native shuffle: the permutation random.Random.shuffle makes from the same state,
    wherever in its 624 words the generator stands, so that every rank and worker, and a state saved
    by a release that shuffled in Python, agree on the order of an epoch."""
    from s3torchconnector import _epoch_order, _native

    generator = _epoch_order._rng(draws_before, n)
    for _ in range(draws_before):
        generator.getrandbits(32)
    state = generator.getstate()[1]
    expected = list(range(n))
    generator.shuffle(expected)
    assert _native.shuffled_positions(n, state) == expected

    seeded = _epoch_order._rng(3, 4)
    expected = list(range(n))
    seeded.shuffle(expected)
    assert list(_epoch_order.epoch_order(n, shuffle=True, seed=3, epoch=4)) == expected


def test_a_generator_state_that_is_not_one_is_refused():
    from s3torchconnector import _native

    with pytest.raises(ValueError, match="not a Mersenne Twister state"):
        _native.shuffled_positions(10, [1, 2, 3])
    with pytest.raises(ValueError, match="mt_state must be"):
        _native.shuffled_positions(10, [])
