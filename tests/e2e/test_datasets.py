"""S3MapDataset and S3IterableDataset against the local S3 server."""

import pickle
import uuid

import pytest
import torch.utils.data
from samples import key_and_bytes

from s3torchconnector import S3Exception, S3IterableDataset, S3MapDataset, S3Reader, S3ReaderConstructor

N_OBJECTS = 12


def _upload(s3, prefix="data/", n=N_OBJECTS):
    objects = {f"{prefix}sample-{i:03d}.bin": f"payload {i} ".encode() * (i + 1) for i in range(n)}
    for key, body in objects.items():
        s3.put(key, body)
    return objects


def _map(s3, prefix="data/", **kwargs):
    return S3MapDataset.from_prefix(s3.uri(prefix), region=s3.region, endpoint=s3.endpoint, **kwargs)


def _iterable(s3, prefix="data/", **kwargs):
    return S3IterableDataset.from_prefix(s3.uri(prefix), region=s3.region, endpoint=s3.endpoint, **kwargs)


# --------------------------------------------------------------------------- map-style


def test_map_dataset_lists_on_first_len_not_at_construction(s3):
    dataset = _map(s3, transform=key_and_bytes)  # nothing uploaded yet
    objects = _upload(s3)
    assert len(dataset) == N_OBJECTS
    assert [dataset[i] for i in range(len(dataset))] == sorted(objects.items())


def test_map_dataset_lists_on_first_index_not_at_construction(s3):
    dataset = _map(s3, transform=key_and_bytes)
    objects = _upload(s3)
    assert dataset[0] == sorted(objects.items())[0]


def test_map_dataset_indexing(s3):
    objects = sorted(_upload(s3).items())
    dataset = _map(s3, transform=key_and_bytes)
    assert len(dataset) == N_OBJECTS
    assert dataset[3] == objects[3]
    assert dataset[-1] == objects[-1]
    assert dataset[-N_OBJECTS] == objects[0]
    with pytest.raises(IndexError):
        dataset[N_OBJECTS]
    with pytest.raises(IndexError):
        dataset[-N_OBJECTS - 1]


def test_map_dataset_default_transform_returns_reader(s3):
    objects = sorted(_upload(s3).items())
    dataset = _map(s3)
    item = dataset[2]
    assert isinstance(item, S3Reader)
    assert item.bucket == s3.bucket
    assert item.key == objects[2][0]
    assert item.read() == objects[2][1]


@pytest.mark.parametrize(
    "reader_constructor", [None, S3ReaderConstructor.range_based()], ids=["default", "range_based"]
)
def test_map_dataset_transform_receives_reader_and_returns_sample(s3, reader_constructor):
    objects = sorted(_upload(s3).items())
    seen = []

    def transform(reader):
        assert isinstance(reader, S3Reader)
        seen.append((reader.bucket, reader.key))
        return {"key": reader.key, "length": len(reader.read())}

    dataset = _map(s3, transform=transform, reader_constructor=reader_constructor)
    assert dataset[5] == {"key": objects[5][0], "length": len(objects[5][1])}
    assert seen == [(s3.bucket, objects[5][0])]


def test_map_dataset_from_objects(s3):
    objects = sorted(_upload(s3).items())
    chosen = [objects[4], objects[0], objects[7]]
    dataset = S3MapDataset.from_objects(
        [s3.uri(key) for key, _ in chosen], region=s3.region, endpoint=s3.endpoint, transform=key_and_bytes
    )
    assert len(dataset) == 3
    assert [dataset[i] for i in range(3)] == chosen
    assert dataset[-1] == chosen[-1]
    single = S3MapDataset.from_objects(s3.uri(chosen[0][0]), region=s3.region, endpoint=s3.endpoint)
    assert len(single) == 1 and single[0].key == chosen[0][0]


def test_map_dataset_getitems_returns_batch_in_index_order(s3):
    objects = sorted(_upload(s3).items())
    dataset = _map(s3, transform=key_and_bytes)
    indices = [7, 0, 11, 3, 3, -1]
    assert dataset.__getitems__(indices) == [objects[i] for i in indices]


def test_map_dataset_empty_prefix_is_empty(s3):
    _upload(s3)
    dataset = _map(s3, prefix="nothing-here/")
    assert len(dataset) == 0
    with pytest.raises(IndexError):
        dataset[0]


def test_map_dataset_whole_bucket(s3):
    objects = _upload(s3, prefix="a/", n=3)
    objects.update(_upload(s3, prefix="b/", n=2))
    dataset = S3MapDataset.from_prefix(s3.uri(""), region=s3.region, endpoint=s3.endpoint, transform=key_and_bytes)
    assert [dataset[i] for i in range(len(dataset))] == sorted(objects.items())


def test_map_dataset_missing_bucket_raises_no_such_bucket(s3):
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    dataset = S3MapDataset.from_prefix(f"s3://{bucket}/data/", region=s3.region, endpoint=s3.endpoint)
    with pytest.raises(S3Exception) as raised:
        len(dataset)
    assert raised.value.code == "NoSuchBucket"
    with pytest.raises(S3Exception) as raised:
        dataset[0]
    assert raised.value.code == "NoSuchBucket"


def test_map_dataset_pickled_after_len_keeps_its_object_list(s3):
    objects = sorted(_upload(s3).items())
    dataset = _map(s3)
    assert len(dataset) == N_OBJECTS
    blob = pickle.dumps(dataset)
    for key, _ in objects:
        s3.boto3.delete_object(Bucket=s3.bucket, Key=key)
    assert s3.keys() == []
    copy = pickle.loads(blob)
    assert len(copy) == N_OBJECTS  # no new listing: the list travelled with the dataset
    assert [copy[i].key for i in range(N_OBJECTS)] == [key for key, _ in objects]
    assert len(_map(s3)) == 0  # a fresh dataset does see the deletion


def test_map_dataset_pickled_before_len_lists_lazily(s3):
    dataset = _map(s3, transform=key_and_bytes)
    copy = pickle.loads(pickle.dumps(dataset))
    objects = sorted(_upload(s3).items())
    assert [copy[i] for i in range(len(copy))] == objects


# --------------------------------------------------------------------------- iterable-style


def test_iterable_dataset_lists_at_iteration_not_at_construction(s3):
    dataset = _iterable(s3, transform=key_and_bytes)
    objects = _upload(s3)
    assert list(dataset) == sorted(objects.items())
    assert list(dataset) == sorted(objects.items())  # a second epoch reads them all again


def test_iterable_dataset_default_transform_yields_readers(s3):
    objects = sorted(_upload(s3).items())
    items = list(_iterable(s3))
    assert all(isinstance(item, S3Reader) for item in items)
    assert [(item.bucket, item.key) for item in items] == [(s3.bucket, key) for key, _ in objects]
    assert [item.read() for item in items] == [body for _, body in objects]


def test_iterable_dataset_from_objects_keeps_given_order(s3):
    objects = sorted(_upload(s3).items())
    chosen = [objects[9], objects[2], objects[5]]
    dataset = S3IterableDataset.from_objects(
        [s3.uri(key) for key, _ in chosen], region=s3.region, endpoint=s3.endpoint, transform=key_and_bytes
    )
    assert list(dataset) == chosen


def test_iterable_dataset_from_objects_missing_object_raises_no_such_key(s3):
    dataset = S3IterableDataset.from_objects(
        [s3.uri("not/there")], region=s3.region, endpoint=s3.endpoint, transform=key_and_bytes
    )
    with pytest.raises(S3Exception) as raised:
        list(dataset)
    assert raised.value.code == "NoSuchKey"


def test_iterable_dataset_empty_prefix_yields_nothing(s3):
    _upload(s3)
    assert list(_iterable(s3, prefix="nothing-here/")) == []


def test_iterable_dataset_missing_bucket_raises_no_such_bucket(s3):
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    dataset = S3IterableDataset.from_prefix(f"s3://{bucket}/data/", region=s3.region, endpoint=s3.endpoint)
    with pytest.raises(S3Exception) as raised:
        list(dataset)
    assert raised.value.code == "NoSuchBucket"


@pytest.mark.parametrize(
    "reader_constructor", [None, S3ReaderConstructor.range_based()], ids=["default", "range_based"]
)
def test_iterable_dataset_prefetch_does_not_change_the_sequence(s3, reader_constructor):
    objects = sorted(_upload(s3, n=20).items())
    sequences = {
        prefetch: list(_iterable(s3, transform=key_and_bytes, prefetch=prefetch, reader_constructor=reader_constructor))
        for prefetch in (0, 1, 3)
    }
    assert sequences[0] == objects
    assert sequences[1] == objects
    assert sequences[3] == objects


def test_iterable_dataset_readers_consumed_later_still_read_right(s3):
    # With read-ahead, readers yielded earlier must still be readable after later ones.
    objects = sorted(_upload(s3).items())
    readers = list(_iterable(s3, prefetch=3))
    assert [r.read() for r in reversed(readers)] == [body for _, body in reversed(objects)]


def test_iterable_dataset_sharding_without_workers_yields_everything(s3):
    objects = sorted(_upload(s3).items())
    assert list(_iterable(s3, transform=key_and_bytes, enable_sharding=True)) == objects


def test_iterable_dataset_sharding_splits_objects_across_dataloader_workers(s3):
    objects = _upload(s3, n=21)
    dataset = _iterable(s3, transform=key_and_bytes, enable_sharding=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="fork")
    samples = list(loader)
    assert sorted(key for key, _ in samples) == sorted(objects)  # each exactly once
    assert dict(samples) == objects


def test_iterable_dataset_without_sharding_gives_every_worker_everything(s3):
    objects = _upload(s3, n=5)
    dataset = _iterable(s3, transform=key_and_bytes)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="fork")
    keys = sorted(key for key, _ in loader)
    assert keys == sorted(list(objects) * 2)


# --------------------------------------------------------------------------- README sample


README_DATASET_SNIPPET = """\
from s3torchconnector import S3MapDataset, S3IterableDataset

# You need to update <BUCKET> and <PREFIX>
DATASET_URI="s3://<BUCKET>/<PREFIX>"
REGION = "us-east-1"

iterable_dataset = S3IterableDataset.from_prefix(DATASET_URI, region=REGION)

# Datasets are also iterators. 
for item in iterable_dataset:
  print(item.key)

# S3MapDataset eagerly lists all the objects under the given prefix 
# to provide support of random access.  
# S3MapDataset builds a list of all objects at the first access to its elements or 
# at the first call to get the number of elements, whichever happens first.
# This process might take some time and may give the impression of being unresponsive.
map_dataset = S3MapDataset.from_prefix(DATASET_URI, region=REGION)

# Randomly access to an item in map_dataset.
item = map_dataset[0]

# Learn about bucket, key, and content of the object
bucket = item.bucket
key = item.key
content = item.read()
len(content)
"""


def test_readme_dataset_sample_runs(s3, monkeypatch, capsys):
    objects = sorted(_upload(s3, prefix="images/", n=4).items())
    s3.put("other/ignored.bin", b"not under the prefix")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    assert s3.region == "us-east-1"
    code = README_DATASET_SNIPPET.replace("<BUCKET>", s3.bucket).replace("<PREFIX>", "images/")
    namespace = {"__name__": "readme_sample"}
    exec(compile(code, "README-dataset", "exec"), namespace)
    assert capsys.readouterr().out.split() == [key for key, _ in objects]
    assert namespace["bucket"] == s3.bucket
    assert namespace["key"] == objects[0][0]
    assert namespace["content"] == objects[0][1]


@pytest.mark.parametrize("factory", ["from_prefix", "from_objects"])
@pytest.mark.parametrize("kind", [S3MapDataset, S3IterableDataset], ids=["map", "iterable"])
def test_datasets_survive_pickling(s3, kind, factory):
    # DataLoader workers started by spawn/forkserver receive the dataset pickled.
    objects = sorted(_upload(s3, n=4).items())
    source = s3.uri("data/") if factory == "from_prefix" else [s3.uri(key) for key, _ in objects]
    dataset = getattr(kind, factory)(source, region=s3.region, endpoint=s3.endpoint, transform=key_and_bytes)
    copy = pickle.loads(pickle.dumps(dataset))
    assert type(copy) is kind
    if kind is S3MapDataset:
        assert [copy[i] for i in range(len(copy))] == objects
    else:
        assert list(copy) == objects


def test_map_dataset_lists_only_once(s3):
    objects = sorted(_upload(s3).items())
    dataset = _map(s3)
    assert len(dataset) == N_OBJECTS
    s3.put("data/sample-999.bin", b"late")
    assert len(dataset) == N_OBJECTS
    assert dataset[-1].key == objects[-1][0]


SPECIAL_KEYS = ["dir/a b+c?d#e%f.bin", "dir/unicodé/ключ 😀.bin", "dir/~!@$&'()*,;=:.bin", "dir//double.bin"]


@pytest.mark.parametrize("kind", [S3MapDataset, S3IterableDataset], ids=["map", "iterable"])
def test_datasets_with_special_character_keys(s3, kind):
    objects = {key: key.encode() * 2 for key in SPECIAL_KEYS}
    for key, body in objects.items():
        s3.put(key, body)
    s3.put("dirty/not-under-prefix", b"x")
    by_prefix = kind.from_prefix(s3.uri("dir/"), region=s3.region, endpoint=s3.endpoint, transform=key_and_bytes)
    by_objects = kind.from_objects(
        [s3.uri(key) for key in sorted(objects)], region=s3.region, endpoint=s3.endpoint, transform=key_and_bytes
    )
    for dataset in (by_prefix, by_objects):
        items = [dataset[i] for i in range(len(dataset))] if kind is S3MapDataset else list(dataset)
        assert items == sorted(objects.items())
    unicode_prefix = kind.from_prefix(s3.uri("dir/unicodé/"), region=s3.region, endpoint=s3.endpoint)
    items = [unicode_prefix[i] for i in range(len(unicode_prefix))] if kind is S3MapDataset else list(unicode_prefix)
    assert [item.key for item in items] == ["dir/unicodé/ключ 😀.bin"]


def test_datasets_list_past_one_page(s3):
    # ListObjectsV2 returns at most 1000 keys a page: both kinds must follow the continuation.
    from concurrent.futures import ThreadPoolExecutor

    keys = [f"many/{i:05d}" for i in range(1003)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put(key, key.encode()), keys))
    dataset = _map(s3, prefix="many/")
    assert len(dataset) == len(keys)
    assert dataset[-1].key == keys[-1] and dataset[-1].read() == keys[-1].encode()
    assert [item.key for item in _iterable(s3, prefix="many/", prefetch=0)] == keys


# --------------------------------------------------------------------------- arguments and properties

KINDS = pytest.mark.parametrize("kind", [S3MapDataset, S3IterableDataset], ids=["map", "iterable"])


@KINDS
def test_datasets_report_their_region_and_endpoint(s3, kind):
    """What the dataset was made with; no endpoint given reads as None."""
    dataset = kind.from_prefix(s3.uri("data/"), region="eu-west-2", endpoint=s3.endpoint)
    assert (dataset.region, dataset.endpoint) == ("eu-west-2", s3.endpoint)
    default = kind.from_objects([s3.uri("data/a")], region="ap-south-1")
    assert (default.region, default.endpoint) == ("ap-south-1", None)


@KINDS
@pytest.mark.parametrize("factory", ["from_prefix", "from_objects"])
@pytest.mark.parametrize("transform", [None, "decode", 42])
def test_datasets_reject_a_transform_that_is_not_callable(s3, kind, factory, transform):
    """Caught when the dataset is made, not at the first sample inside a DataLoader worker."""
    source = s3.uri("data/") if factory == "from_prefix" else [s3.uri("data/a")]
    with pytest.raises(TypeError, match="transform must be callable"):
        getattr(kind, factory)(source, region=s3.region, endpoint=s3.endpoint, transform=transform)


@KINDS
@pytest.mark.parametrize("uri", ["s3://bucket", "s3://bucket/"])
def test_from_objects_rejects_a_bucket_without_a_key(kind, uri):
    """A bucket is not an object: refused when the dataset is made, not as a failed GET later."""
    with pytest.raises(ValueError, match="names a bucket, not an object"):
        kind.from_objects(["s3://bucket/ok", uri], region="us-east-1")
    with pytest.raises(ValueError, match="names a bucket, not an object"):
        kind.from_objects(uri, region="us-east-1")


@pytest.mark.parametrize("enable_sharding", [1, 0, "yes", None])
def test_iterable_dataset_rejects_non_bool_enable_sharding(s3, enable_sharding):
    """Only True or False: a misplaced positional argument must not silently switch sharding."""
    with pytest.raises(TypeError, match="enable_sharding must be a bool"):
        _iterable(s3, enable_sharding=enable_sharding)


@pytest.mark.parametrize("option", ["prefetch", "prefetch_bytes"])
@pytest.mark.parametrize("value", [-1, True, 1.5, "8", None])
def test_iterable_dataset_rejects_bad_prefetch_limits(s3, option, value):
    """Non-negative ints only, refused at construction rather than misbehaving mid-epoch."""
    with pytest.raises(ValueError, match=f"{option} must be a non-negative int"):
        _iterable(s3, **{option: value})


def test_iterable_dataset_prefetch_limits_of_zero_are_valid(s3):
    """0 turns read-ahead off (by count or by bytes): still every object, in order."""
    objects = sorted(_upload(s3, n=3).items())
    for options in ({"prefetch": 0}, {"prefetch_bytes": 0}):
        assert list(_iterable(s3, transform=key_and_bytes, **options)) == objects
