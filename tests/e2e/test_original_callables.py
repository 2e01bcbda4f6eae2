"""The original's listers as custom ``get_dataset_objects``: 1.5.0 users build datasets with
``S3MapDataset(region, partial(get_objects_from_prefix, uri))`` and must get what they got."""

import pickle
from functools import partial

import pytest
from samples import keep_list, key_and_bytes
from torch.utils.data import DataLoader

from s3torchconnector import S3IterableDataset, S3MapDataset
from s3torchconnector._s3bucket_key_data import S3BucketKeyData
from s3torchconnector._s3client import S3Client
from s3torchconnector._s3dataset_common import get_objects_from_prefix, get_objects_from_uris


@pytest.fixture
def objects(s3):
    uploaded = {f"train/{i:02d}.bin": f"sample {i}".encode() * (i + 1) for i in range(6)}
    for key, body in uploaded.items():
        s3.put(key, body)
    s3.put("other/outside.bin", b"not listed")
    return uploaded


def test_map_dataset_from_partial_get_objects_from_prefix(s3, objects):
    dataset = S3MapDataset(
        s3.region, partial(get_objects_from_prefix, s3.uri("train/")), endpoint=s3.endpoint, transform=key_and_bytes
    )
    assert len(dataset) == len(objects)
    assert [dataset[i] for i in range(len(dataset))] == sorted(objects.items())


def test_get_objects_from_prefix_yields_listed_bucket_key_data(s3, objects):
    client = S3Client(s3.region, endpoint=s3.endpoint)
    listed = list(get_objects_from_prefix(s3.uri("train/"), client))
    assert all(isinstance(item, S3BucketKeyData) for item in listed)
    assert [(item.bucket, item.key, item.object_info.size) for item in listed] == [
        (s3.bucket, key, len(body)) for key, body in sorted(objects.items())
    ]


def test_map_dataset_from_partial_get_objects_from_uris(s3, objects):
    keys = ["train/03.bin", "train/00.bin"]  # the given order, not the listing's
    dataset = S3MapDataset(
        s3.region,
        partial(get_objects_from_uris, [s3.uri(key) for key in keys]),
        endpoint=s3.endpoint,
        transform=key_and_bytes,
    )
    assert [dataset[i] for i in range(len(dataset))] == [(key, objects[key]) for key in keys]
    # One URI as a plain string, as the original accepted.
    single = S3MapDataset(s3.region, partial(get_objects_from_uris, s3.uri(keys[0])), endpoint=s3.endpoint)
    assert len(single) == 1 and single[0].read() == objects[keys[0]]


def test_custom_callable_composed_from_get_objects_from_prefix(s3, objects):
    def even_samples(client):
        return (item for item in get_objects_from_prefix(s3.uri("train/"), client) if int(item.key[6:8]) % 2 == 0)

    dataset = S3MapDataset(s3.region, even_samples, endpoint=s3.endpoint, transform=key_and_bytes)
    assert [dataset[i][0] for i in range(len(dataset))] == ["train/00.bin", "train/02.bin", "train/04.bin"]


@pytest.mark.parametrize("kind", [S3MapDataset, S3IterableDataset], ids=["map", "iterable"])
def test_pickled_partial_dataset_in_spawn_worker(s3, objects, kind):
    dataset = kind(
        s3.region, partial(get_objects_from_prefix, s3.uri("train/")), endpoint=s3.endpoint, transform=key_and_bytes
    )
    dataset = pickle.loads(pickle.dumps(dataset))  # unlisted: the partial itself travels
    options = {
        "batch_size": 2,
        "collate_fn": keep_list,
        "num_workers": 1,
        "multiprocessing_context": "spawn",
        "timeout": 120,
    }
    if kind is S3MapDataset:
        # An explicit sampler, so the parent never calls len(): the worker lists, through the partial.
        options["sampler"] = range(len(objects))
    samples = [sample for batch in DataLoader(dataset, **options) for sample in batch]
    assert samples == sorted(objects.items())


def test_a_listing_restored_from_its_state_with_the_originals_client_lists_the_rest(s3, objects):
    """The original's datasets pickle a listing as its fields and restore it with
    ListObjectStream._from_state(client=<MountpointS3Client>, ...): the rest of the listing follows."""
    from s3torchconnectorclient._mountpoint_s3_client import ListObjectStream, MountpointS3Client

    client = MountpointS3Client(s3.region, "test", endpoint=s3.endpoint)
    stream = client.list_objects(s3.bucket, "train/", max_keys=2)
    first = [info.key for info in next(stream).object_info]
    fields = ("bucket", "prefix", "delimiter", "max_keys", "continuation_token", "complete")
    state = {"client": client, **{name: getattr(stream, name) for name in fields}}
    assert state["continuation_token"] and not state["complete"]
    restored = ListObjectStream._from_state(**state)
    rest = [info.key for page in restored for info in page.object_info]
    assert first + rest == sorted(objects) and restored.complete
