"""Real torch DataLoaders over both dataset kinds in the local S3 server: every sample arrives
exactly once per epoch, with its bytes, whatever the worker count and start method."""

import random
import uuid

import pytest
import torch
from epoch_check import check_epoch
from samples import keep_list, key_and_bytes
from torch.utils.data import DataLoader

from s3torchconnector import S3IterableDataset, S3MapDataset

REGION = "us-east-1"
N_OBJECTS = 40


class Bucket:
    def __init__(self, endpoint):
        import boto3  # here, not at the top: spawned workers import this module and need no boto3

        self.endpoint = endpoint
        self.name = f"loader-{uuid.uuid4().hex[:16]}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        client.create_bucket(Bucket=self.name)
        rng = random.Random(42)
        self.objects = {}
        for i in range(N_OBJECTS):
            key = f"train/{i:04d}.bin"
            body = rng.randbytes(rng.randint(1024, 4096))
            client.put_object(Bucket=self.name, Key=key, Body=body)
            self.objects[key] = body
        client.put_object(Bucket=self.name, Key="other/not-in-dataset.bin", Body=b"x")

    def dataset(self, kind):
        uri = f"s3://{self.name}/train/"
        if kind == "map":
            return S3MapDataset.from_prefix(uri, region=REGION, endpoint=self.endpoint, transform=key_and_bytes)
        return S3IterableDataset.from_prefix(
            uri, region=REGION, endpoint=self.endpoint, transform=key_and_bytes, enable_sharding=True
        )


@pytest.fixture(scope="module")
def bucket(s3_endpoint):
    return Bucket(s3_endpoint)


def _loader(dataset, num_workers, context, persistent=False):
    options = dict(batch_size=4, collate_fn=keep_list, num_workers=num_workers)
    if isinstance(dataset, S3MapDataset):
        options.update(shuffle=True, generator=torch.Generator().manual_seed(0))
    if num_workers:
        options.update(multiprocessing_context=context, persistent_workers=persistent, timeout=120)
    return DataLoader(dataset, **options)


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize("kind", ["map", "iterable"])
@pytest.mark.parametrize(
    "num_workers, context",
    [(0, None), (2, "fork"), (2, "spawn"), (2, "forkserver"), (4, "fork")],
    ids=["0-workers", "2-fork", "2-spawn", "2-forkserver", "4-fork"],
)
def test_dataloader_delivers_every_sample_once(bucket, kind, num_workers, context):
    loader = _loader(bucket.dataset(kind), num_workers, context)
    check_epoch(loader, bucket.objects)


@pytest.mark.parametrize("kind", ["map", "iterable"])
def test_dataloader_persistent_workers_two_epochs(bucket, kind):
    loader = _loader(bucket.dataset(kind), 2, "fork", persistent=True)
    for _ in range(2):
        check_epoch(loader, bucket.objects)


@pytest.mark.parametrize("kind", ["map", "iterable"])
def test_dataloader_with_dataset_used_in_parent_first(bucket, kind):
    # The parent has already made requests (its native client exists) before workers fork.
    dataset = bucket.dataset(kind)
    first = dataset[0] if kind == "map" else next(iter(dataset))
    assert first == sorted(bucket.objects.items())[0]
    check_epoch(_loader(dataset, 2, "fork"), bucket.objects)
