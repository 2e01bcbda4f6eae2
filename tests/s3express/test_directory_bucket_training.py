"""Datasets, checkpoints, DCP, Lightning and tar shards on an S3 Express One Zone directory bucket,
through ExpressServer. Its listings come in another order every time (S3 promises none): DataLoader
workers, which each list for themselves, must still read every object exactly once, a seeded order
must be the one a general purpose bucket with the same keys gives, and a saved position must resume."""

import hashlib
from itertools import islice

import pytest
import torch
import torch.distributed.checkpoint as dcp
from epoch_check import check_epoch
from samples import keep_list, key_and_bytes, key_of
from torch.utils.data import DataLoader
from training_state import assert_nested_equal, model_and_optimizer

from s3torchconnector import S3Checkpoint, S3ClientConfig, S3IterableDataset, S3MapDataset
from s3torchconnector.dcp import S3StorageReader, S3StorageWriter
from s3torchconnector.manifest import write_manifest
from s3torchconnector.shards import pack

from .conftest import REGION, directory_bucket_name, express_server_for, moto_client

MIB = 1024 * 1024

pytestmark = pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning")


@pytest.fixture
def unordered(s3_endpoint):
    """(server, bucket, objects): a directory bucket of 40 small objects under data/, listed in another
    order every time."""
    with express_server_for(s3_endpoint, unstable_listing=True) as server:
        bucket = directory_bucket_name()
        moto = moto_client(s3_endpoint)
        moto.create_bucket(Bucket=bucket)
        objects = {f"data/{i:03d}.bin": hashlib.sha256(str(i).encode()).digest() * (i % 4) for i in range(40)}
        for key, body in objects.items():
            moto.put_object(Bucket=bucket, Key=key, Body=body)
        yield server, bucket, objects


def uri(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_iterable_dataset_workers_read_each_object_once(unordered, method):
    server, bucket, objects = unordered
    dataset = S3IterableDataset.from_prefix(
        uri(bucket, "data/"), region=REGION, endpoint=server.endpoint, transform=key_and_bytes, enable_sharding=True
    )
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=keep_list, multiprocessing_context=method)
    check_epoch(loader, objects)
    assert server.refused() == []


def test_map_dataset_workers_agree_on_every_index(unordered):
    # With a SequentialSampler and batches, the workers start before the first index: each lists alone.
    server, bucket, objects = unordered
    dataset = S3MapDataset.from_prefix(
        uri(bucket, "data/"), region=REGION, endpoint=server.endpoint, transform=key_and_bytes
    )
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=keep_list, multiprocessing_context="spawn")
    check_epoch(loader, objects)
    assert [key for key, _ in (dataset[i] for i in range(len(objects)))] == sorted(objects)


def test_seeded_order_and_resume_are_a_general_purpose_buckets(unordered, s3_endpoint):
    server, bucket, objects = unordered
    general = "general-purpose-twin"
    moto = moto_client(s3_endpoint)
    moto.create_bucket(Bucket=general)
    for key, body in objects.items():
        moto.put_object(Bucket=general, Key=key, Body=body)

    def shuffled(bucket_name, endpoint):
        return S3IterableDataset.from_prefix(
            uri(bucket_name, "data/"), region=REGION, endpoint=endpoint, transform=key_of, shuffle=True, seed=7
        )

    expected = list(shuffled(general, s3_endpoint))
    assert sorted(expected) == sorted(objects) and expected != sorted(objects)
    assert list(shuffled(bucket, server.endpoint)) == expected

    stopped = iter(shuffled(bucket, server.endpoint))
    before = list(islice(stopped, 15))
    resumed = shuffled(bucket, server.endpoint)
    resumed.load_state_dict(stopped.state_dict())  # its listing fingerprint must match a new listing
    assert before + list(resumed) == expected


def test_manifest_of_a_directory_bucket_reads_in_key_order(unordered):
    server, bucket, objects = unordered
    write_manifest(uri(bucket, "data/"), uri(bucket, "manifests/all.jsonl"), region=REGION, endpoint=server.endpoint)
    dataset = S3IterableDataset.from_manifest(
        uri(bucket, "manifests/all.jsonl"), region=REGION, endpoint=server.endpoint, transform=key_and_bytes
    )
    assert list(dataset) == sorted(objects.items())


def test_packed_shards_keep_each_samples_objects_together(unordered):
    server, bucket, _ = unordered
    moto = moto_client(f"http://{server.upstream_host}:{server.upstream_port}")
    samples = {f"raw/{i:03d}": (f"image {i}".encode(), str(i % 3).encode()) for i in range(30)}
    for key, (image, label) in samples.items():
        moto.put_object(Bucket=bucket, Key=key + ".jpg", Body=image)
        moto.put_object(Bucket=bucket, Key=key + ".cls", Body=label)

    result = pack(uri(bucket, "raw/"), uri(bucket, "shards/"), region=REGION, endpoint=server.endpoint, max_count=8)
    assert result.samples == 30
    dataset = S3IterableDataset.from_prefix(
        uri(bucket, "shards/"), region=REGION, endpoint=server.endpoint, shard_format="tar"
    )
    read = {sample["__key__"]: (sample["jpg"], sample["cls"]) for sample in dataset}
    assert read == {key[len("raw/") :]: value for key, value in samples.items()}
    assert server.refused() == []


@pytest.fixture
def directory_bucket(express_server, s3_endpoint):
    bucket = directory_bucket_name()
    moto_client(s3_endpoint).create_bucket(Bucket=bucket)
    return express_server, bucket


def test_checkpoint_round_trips_in_parts(directory_bucket):
    server, bucket = directory_bucket
    generator = torch.Generator().manual_seed(0)
    state = {"weight": torch.randn(3 * MIB, generator=generator), "step": torch.tensor(12)}  # 12 MiB
    checkpoint = S3Checkpoint(
        region=REGION, endpoint=server.endpoint, s3client_config=S3ClientConfig(part_size=5 * MIB)
    )
    with checkpoint.writer(uri(bucket, "ckpt/epoch0.pt")) as writer:
        torch.save(state, writer)
    with checkpoint.reader(uri(bucket, "ckpt/epoch0.pt")) as reader:
        loaded = torch.load(reader, weights_only=True)
    assert_nested_equal(loaded, state)
    assert [e for e in server.exchanges() if "partNumber=2" in e.target]  # a multipart upload
    assert server.refused() == [] and server.sessions_created(bucket) == 1


def test_dcp_saves_and_loads(directory_bucket):
    server, bucket = directory_bucket
    model, optimizer = model_and_optimizer(seed=1)
    state = {"model": model.state_dict(), "optim": optimizer.state_dict()}
    dcp.save(state, storage_writer=S3StorageWriter(REGION, uri(bucket, "dcp"), endpoint=server.endpoint))
    fresh_model, fresh_optimizer = model_and_optimizer(seed=2)
    target = {"model": fresh_model.state_dict(), "optim": fresh_optimizer.state_dict()}
    dcp.load(target, storage_reader=S3StorageReader(REGION, uri(bucket, "dcp"), endpoint=server.endpoint))
    assert_nested_equal(target["model"], model.state_dict())
    assert_nested_equal(target["optim"], optimizer.state_dict())
    assert server.refused() == []


def test_lightning_checkpoint_saves_loads_and_removes(directory_bucket):
    from s3torchconnector.lightning import S3LightningCheckpoint

    server, bucket = directory_bucket
    plugin = S3LightningCheckpoint(REGION, endpoint=server.endpoint)
    plugin.save_checkpoint({"weights": torch.arange(6.0), "epoch": 2}, uri(bucket, "run/last.ckpt"))
    loaded = plugin.load_checkpoint(uri(bucket, "run/last.ckpt"))
    assert torch.equal(loaded["weights"], torch.arange(6.0)) and loaded["epoch"] == 2
    plugin.remove_checkpoint(uri(bucket, "run/last.ckpt"))
    assert (
        moto_client(f"http://{server.upstream_host}:{server.upstream_port}").list_objects_v2(Bucket=bucket)["KeyCount"]
        == 0
    )
    assert server.refused() == []
