"""MixedDataset against rclone's `serve s3`: a mixture of a prefix, a manifest and tar shards reads
every sample once with its bytes, and a state saved mid-pass by two shards resumes on three."""

import itertools

from samples import tar_of

from s3torchconnector import MixedDataset, S3IterableDataset
from s3torchconnector.manifest import write_manifest


def key_and_body(item):
    """A transform for objects (readers) and tar samples (dicts) alike."""
    if isinstance(item, dict):
        return item["__key__"], item["bin"]
    return item.key, item.read()


def upload(s3):
    expected = {}
    for i in range(9):
        s3.put(f"plain/{i:03d}.bin", f"plain {i}".encode())
        expected[f"plain/{i:03d}.bin"] = f"plain {i}".encode()
    for i in range(7):
        s3.put(f"listed/{i:03d}.bin", f"listed {i}".encode())
        expected[f"listed/{i:03d}.bin"] = f"listed {i}".encode()
    write_manifest(s3.uri("listed/"), s3.uri("manifests/listed.jsonl"), region=s3.region, endpoint=s3.endpoint)
    for shard in range(2):
        members = [(f"s{shard}/{i:03d}.bin", f"tar {shard} {i}".encode()) for i in range(5)]
        s3.put(f"shards/{shard}.tar", tar_of(members))
        expected.update({name[: -len(".bin")]: body for name, body in members})
    return expected


def sources(s3, **options):
    common = dict(region=s3.region, endpoint=s3.endpoint, transform=key_and_body, **options)
    return [
        S3IterableDataset.from_prefix(s3.uri("plain/"), **common),
        S3IterableDataset.from_manifest(s3.uri("manifests/listed.jsonl"), **common),
        S3IterableDataset.from_prefix(s3.uri("shards/"), shard_format="tar", **common),
    ]


def test_a_mixture_of_a_prefix_a_manifest_and_tar_shards_reads_every_sample_once(s3):
    expected = upload(s3)
    samples = list(MixedDataset(sources(s3), [0.5, 0.3, 0.2], seed=3))
    assert sorted(key for key, _ in samples) == sorted(expected)  # each once
    assert dict(samples) == expected


def test_two_shards_resume_elastically_on_three(s3):
    expected = upload(s3)

    def mixture(shard, shards):
        datasets = sources(s3, enable_sharding=True, shuffle=True, seed=2)
        mixed = MixedDataset(datasets, [0.5, 0.3, 0.2], seed=3)
        for dataset in [mixed, *datasets]:
            dataset._rank, dataset._world_size = shard, shards  # as rank `shard` of a job of `shards`
        return mixed

    stopped = [iter(mixture(shard, 2)) for shard in range(2)]
    before = [key for shard, it in enumerate(stopped) for key, _ in itertools.islice(it, 3 + 2 * shard)]
    state = MixedDataset.elastic_state([it.state_dict() for it in stopped])
    after = []
    for shard in range(3):
        resumed = mixture(shard, 3)
        resumed.load_state_dict(state)
        after.extend(key for key, _ in resumed)
    assert sorted(before + after) == sorted(expected)  # each once
