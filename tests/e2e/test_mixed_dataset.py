"""MixedDataset against a real S3 API (moto over HTTP): reproducible weighted mixtures, the proportions
they keep, when a pass stops, sharding across DataLoader workers, and exact and elastic resume of
states saved mid-pass (in this process; tests/e2e/test_mixture_resume.py resumes in new processes,
with spawn workers and gloo ranks)."""

import collections
import itertools

import pytest
import torch.utils.data
from samples import keep_list, key_and_bytes, key_of

from s3torchconnector import MixedDataset, S3IterableDataset

SOURCES = {"web": 12, "code": 8, "books": 5}  # objects in each source


@pytest.fixture
def sources(s3):
    for name, count in SOURCES.items():
        for i in range(count):
            s3.put(f"{name}/{i:03d}", f"{name} {i}".encode())
    return s3


def source(s3, name, **options):
    options.setdefault("transform", key_of)
    return S3IterableDataset.from_prefix(s3.uri(f"{name}/"), region=s3.region, endpoint=s3.endpoint, **options)


def mixture(s3, weights=(0.5, 0.3, 0.2), source_options=None, **options):
    datasets = [source(s3, name, **(source_options or {})) for name in SOURCES]
    return MixedDataset(datasets, list(weights), **options)


def source_of(key):
    return key.split("/")[0]


def test_the_same_seed_gives_the_same_mixture_and_another_seed_another(sources):
    first = list(mixture(sources, seed=7))
    again = list(mixture(sources, seed=7))
    other = list(mixture(sources, seed=8))
    assert first == again
    assert other != first
    assert sorted(first) == sorted(other)  # the same samples, mixed otherwise


def test_all_exhausted_reads_every_sample_of_every_source_once_with_its_bytes(sources):
    samples = list(mixture(sources, source_options={"transform": key_and_bytes}))
    assert sorted(samples) == sorted(
        (f"{name}/{i:03d}", f"{name} {i}".encode()) for name, count in SOURCES.items() for i in range(count)
    )


def test_each_source_keeps_its_own_order_and_set_epoch_reaches_it(sources):
    options = {"shuffle": True, "seed": 3}
    mixed = mixture(sources, source_options=options)
    mixed.set_epoch(2)
    samples = list(mixed)
    for name in SOURCES:
        alone = source(sources, name, **options)
        alone.set_epoch(2)
        assert [key for key in samples if source_of(key) == name] == list(alone), name
    epoch_zero = mixture(sources, source_options=options)
    assert list(epoch_zero) != samples


def test_first_exhausted_ends_when_one_source_runs_out(sources):
    samples = list(mixture(sources, weights=(1, 1, 1), stop="first_exhausted"))
    counts = collections.Counter(map(source_of, samples))
    emptied = [name for name, count in SOURCES.items() if counts[name] == count]
    assert len(emptied) == 1, counts
    # The pass ended at the draw that found that source empty: its last sample came before the end.
    assert len(samples) < sum(SOURCES.values())


WEIGHTS = (0.5, 0.3, 0.2)


def unread_sources(s3, shard=0, shards=1):
    """A mixture as shard ``shard`` of ``shards`` sees it, of sources whose objects are never read (the
    transform takes the key; prefetch off): the draws are what is measured."""
    datasets = [
        S3IterableDataset.from_objects(
            [s3.uri(f"{name}/{i}") for i in range(count)],
            region=s3.region,
            endpoint=s3.endpoint,
            transform=key_of,
            prefetch=0,
            enable_sharding=True,
        )
        for name, count in SOURCES.items()
    ]
    mixed = MixedDataset(datasets, WEIGHTS, seed=11, stop="never")
    for dataset in [mixed, *datasets]:
        dataset._rank, dataset._world_size = shard, shards
    return mixed


def assert_proportions(samples):
    counts = collections.Counter(map(source_of, samples))
    for name, weight in zip(SOURCES, WEIGHTS):
        # 1% is more than six standard deviations of a share of 100,000 draws (at most 0.16%).
        assert abs(counts[name] / len(samples) - weight) < 0.01, counts


def test_never_keeps_the_proportions_over_100000_samples(s3):
    samples = list(itertools.islice(unread_sources(s3), 100_000))
    assert_proportions(samples)
    # Every source ran many passes: each of its objects came about as often as the others.
    for name, count in SOURCES.items():
        per_object = collections.Counter(key for key in samples if source_of(key) == name)
        assert len(per_object) == count and max(per_object.values()) - min(per_object.values()) <= 1


def test_the_proportions_hold_after_an_elastic_resume(s3):
    stopped = [iter(unread_sources(s3, shard, 2)) for shard in range(2)]
    for shard, it in enumerate(stopped):
        list(itertools.islice(it, 1000 + 777 * shard))
    state = MixedDataset.elastic_state([it.state_dict() for it in stopped])
    after = []
    for shard in range(3):
        resumed = unread_sources(s3, shard, 3)
        resumed.load_state_dict(state)
        after.extend(itertools.islice(resumed, 34_000))
    assert_proportions(after)


def test_a_source_that_runs_out_leaves_its_share_to_the_others(sources):
    samples = list(mixture(sources, weights=(1, 1, 98)))
    books = [i for i, key in enumerate(samples) if source_of(key) == "books"]
    # books is drawn nearly every time until its 5 samples are gone, then the others share the draws.
    assert books[-1] < 15
    assert len(samples) == sum(SOURCES.values())


@pytest.mark.parametrize("context", ["fork", "spawn", "forkserver"])
def test_sharded_sources_split_across_dataloader_workers_read_each_sample_once(sources, context):
    mixed = mixture(sources, source_options={"enable_sharding": True})
    loader = torch.utils.data.DataLoader(
        mixed, batch_size=4, num_workers=2, collate_fn=keep_list, multiprocessing_context=context
    )
    keys = [key for batch in loader for key in batch]
    assert sorted(keys) == sorted(f"{name}/{i:03d}" for name, count in SOURCES.items() for i in range(count))


def test_mixtures_nest(sources):
    inner = MixedDataset([source(sources, "code"), source(sources, "books")], [1, 1], seed=1)
    outer = MixedDataset([source(sources, "web"), inner], [2, 1], seed=1)
    samples = list(outer)
    assert sorted(samples) == sorted(f"{name}/{i:03d}" for name, count in SOURCES.items() for i in range(count))
    assert samples == list(
        MixedDataset(
            [source(sources, "web"), MixedDataset([source(sources, "code"), source(sources, "books")], [1, 1], seed=1)],
            [2, 1],
            seed=1,
        )
    )


@pytest.mark.parametrize("stop", ["all_exhausted", "first_exhausted", "never"])
def test_a_saved_iterator_state_resumes_exactly_in_a_new_mixture(sources, stop):
    options = {"shuffle": True, "seed": 5}
    taken = 40 if stop == "never" else 9
    full = list(itertools.islice(mixture(sources, source_options=options, stop=stop, seed=2), 2 * taken))
    stopped = iter(mixture(sources, source_options=options, stop=stop, seed=2))
    before = list(itertools.islice(stopped, taken))
    state = stopped.state_dict()

    resumed = mixture(sources, source_options=options, stop=stop, seed=2)
    resumed.load_state_dict(state)
    after = list(itertools.islice(resumed, len(full) - taken))
    assert before + after == full


def test_a_state_of_other_settings_is_refused_with_the_reason(sources):
    stopped = iter(mixture(sources, seed=2))
    next(stopped)
    resumed = mixture(sources, weights=(0.2, 0.3, 0.5), seed=2)
    resumed.load_state_dict(stopped.state_dict())
    with pytest.raises(ValueError, match="weights=.*resume with the mixture's original settings"):
        iter(resumed)
    with pytest.raises(ValueError, match="not a state of a MixedDataset"):
        resumed.load_state_dict({"epoch": 3})


def sharded(s3, shard, shards, stop, names=tuple(SOURCES), weights=(0.5, 0.3, 0.2)):
    """A mixture as shard ``shard`` of ``shards`` sees it (as a rank of a job of that many ranks)."""
    datasets = [source(s3, name, enable_sharding=True, shuffle=True, seed=9) for name in names]
    mixed = MixedDataset(datasets, list(weights), seed=4, stop=stop)
    for dataset in [mixed, *datasets]:
        dataset._rank, dataset._world_size = shard, shards
    return mixed


def test_elastic_state_of_two_shards_resumes_on_three_reading_each_sample_once(sources):
    stopped = [iter(sharded(sources, shard, 2, "all_exhausted")) for shard in range(2)]
    before = [key for shard, it in enumerate(stopped) for key in itertools.islice(it, 4 + 3 * shard)]
    state = MixedDataset.elastic_state([{"rank": it.state_dict()} for it in stopped])

    after = []
    for shard in range(3):
        resumed = sharded(sources, shard, 3, "all_exhausted")
        resumed.load_state_dict(state)
        after.extend(resumed)
    counts = collections.Counter(before + after)
    assert sorted(counts) == sorted(f"{name}/{i:03d}" for name, count in SOURCES.items() for i in range(count))
    assert [key for key, n in counts.items() if n > 1] == []


def test_never_merges_shards_passes_apart_at_the_earliest_pass(sources):
    # One source of 5 objects over 2 shards (3 and 2 objects each): shard 0 runs passes ahead.
    stopped = [iter(sharded(sources, shard, 2, "never", names=("books",), weights=(1,))) for shard in range(2)]
    list(itertools.islice(stopped[0], 7))  # its share is 3 a pass: in its third pass
    first_of_shard_1 = list(itertools.islice(stopped[1], 1))  # in its first pass, 1 of its 2 read
    state = MixedDataset.elastic_state([it.state_dict() for it in stopped])

    resumed = sharded(sources, 0, 1, "never", names=("books",), weights=(1,))
    resumed.load_state_dict(state)
    after = list(itertools.islice(resumed, 1 + 5))
    # The earliest pass (epoch 0) resumes with the one object no shard has read in it...
    epoch_zero = source(sources, "books", shuffle=True, seed=9)
    share_of_shard_1 = list(epoch_zero)[1::2]
    assert after[0] in share_of_shard_1 and after[0] not in first_of_shard_1
    # ...then the next pass is read whole.
    assert sorted(after[1:]) == [f"books/{i:03d}" for i in range(5)]


def test_elastic_state_refuses_missing_or_mixed_shards(sources):
    stopped = [iter(sharded(sources, shard, 3, "all_exhausted")) for shard in range(3)]
    for it in stopped:
        next(it)
    states = [it.state_dict() for it in stopped]
    with pytest.raises(ValueError, match=r"shards \[2\] of 3 are missing"):
        MixedDataset.elastic_state(states[:2])
    with pytest.raises(ValueError, match="two states of shard 0"):
        MixedDataset.elastic_state(states + states[:1])
    with pytest.raises(ValueError, match="no MixedDataset state found"):
        MixedDataset.elastic_state([{}])
    with pytest.raises(ValueError, match="merge them with MixedDataset.elastic_state"):
        S3IterableDataset.elastic_state(states)


@pytest.mark.parametrize(
    "datasets, weights, options, error",
    [
        ([], [], {}, "datasets is empty"),
        (["not a dataset"], [1], {}, "datasets\\[0\\] is a str"),
        (None, [1, 2], {}, "2 weights"),
        (None, [0], {}, "positive, finite"),
        (None, [float("nan")], {}, "positive, finite"),
        (None, [True], {}, "weights are numbers"),
        (None, [1], {"stop": "first"}, "stop must be one of"),
        (None, [1], {"seed": 1.5}, "seed must be an int"),
    ],
)
def test_bad_arguments_say_what_is_wrong(sources, datasets, weights, options, error):
    datasets = [source(sources, "web")] if datasets is None else datasets
    with pytest.raises((TypeError, ValueError), match=error):
        MixedDataset(datasets, weights, **options)
    one = source(sources, "web")
    with pytest.raises(ValueError, match="the same dataset object is given twice"):
        MixedDataset([one, one], [1, 1])
