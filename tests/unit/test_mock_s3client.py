"""MockS3Client: an in-memory bucket that answers as S3 and the native client do, and datasets,
checkpoints and DataLoader workers running on it."""

import array
import email.utils
import hashlib
import operator
import pickle
import time

import pytest
import torch
from samples import key_and_bytes
from torch.utils.data import DataLoader

from s3torchconnector import S3Checkpoint, S3Exception, S3IterableDataset, S3MapDataset, S3ReaderConstructor
from s3torchconnector._s3client import MockS3Client, S3Client
from s3torchconnector._s3client._mock_s3client import MockS3Client as MockFromItsModule

REGION = "us-east-1"
BUCKET = "test-bucket"

READERS = {
    "sequential": S3ReaderConstructor.sequential(),
    "range_based": S3ReaderConstructor.range_based(),
    "range_based_0": S3ReaderConstructor.range_based(buffer_size=0),
}


@pytest.fixture
def client() -> MockS3Client:
    return MockS3Client(REGION, BUCKET)


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def _keys(client, prefix="", delimiter="", max_keys=1000):
    pages = list(client.list_objects(BUCKET, prefix, delimiter, max_keys))
    keys = [info.key for page in pages for info in page.object_info]
    prefixes = [p for page in pages for p in page.common_prefixes]
    return keys, prefixes, pages


def _assert_s3_error(error: S3Exception, code, status, operation, bucket, key):
    assert (error.code, error.status, error.operation, error.bucket, error.key) == (
        code,
        status,
        operation,
        bucket,
        key,
    )
    assert str(error).startswith(f"{code}: ") and str(error).endswith(f"HTTP {status})")


# ---------------------------------------------------------------- the client


def test_is_an_s3_client_with_the_original_signature():
    client = MockS3Client(REGION, BUCKET, None, None)
    assert isinstance(client, S3Client)
    assert MockFromItsModule is MockS3Client
    assert client.region == REGION


def test_add_and_remove_object(client):
    client.add_object("a", b"one")
    client.add_object("a", bytearray(b"two"))  # replaces, and takes any bytes-like object
    assert client.get_object(BUCKET, "a").read() == b"two"
    client.remove_object("a")
    client.remove_object("a")  # removing a missing object is harmless
    assert _keys(client)[0] == []


# ---------------------------------------------------------------- GET


def test_get_whole_object_and_its_info(client):
    data = bytes(range(256)) * 100
    client.add_object("dir/obj", data)
    stream = client._get_object_stream(BUCKET, "dir/obj")
    info = stream.info()
    assert (info.key, info.size, info.etag) == ("dir/obj", len(data), _etag(data))
    assert stream.read_all_bytes() == data


@pytest.mark.parametrize(
    "start, end",
    [(0, 10), (5, 6), (0, 25600), (100, 200), (25590, 25600), (25590, 30000), (None, 7), (25000, None), (9, 9)],
)
def test_get_range_is_bytes_start_to_end(client, start, end):
    data = bytes(range(256)) * 100
    client.add_object("obj", data)
    stream = client._get_object_stream(BUCKET, "obj", start, end)
    assert stream.read_all_bytes() == data[start:end]


@pytest.mark.parametrize("start, end", [(10, None), (10, 20), (11, 12)])
def test_get_range_past_the_end_is_empty(client, start, end):
    client.add_object("obj", b"0123456789")
    assert client._get_object_stream(BUCKET, "obj", start, end).read_all_bytes() == b""


def test_get_range_info_gives_the_whole_size(client):
    client.add_object("obj", b"0123456789")
    assert client._get_object_stream(BUCKET, "obj", 2, 4).info().size == 10


def test_get_stream_reads_in_pieces(client):
    data = bytes(range(256)) * 10
    client.add_object("obj", data)
    stream = client._get_object_stream(BUCKET, "obj", 0, len(data))
    buf = bytearray(1000)
    assert stream.readinto(buf) == 1000 and buf == data[:1000]
    assert stream.readinto(memoryview(buf)[:10]) == 10 and buf[:10] == data[1000:1010]
    rest = b""
    while (chunk := stream.next_chunk()) is not None:
        rest += bytes(chunk)
    assert rest == data[1010:]
    assert stream.readinto(buf) == 0


def test_readinto_refuses_read_only_buffers(client):
    client.add_object("obj", b"abc")
    with pytest.raises(BufferError):
        client._get_object_stream(BUCKET, "obj").readinto(b"123")


def test_get_missing_key_fails_at_the_first_read(client):
    stream = client._get_object_stream(BUCKET, "missing")  # no error yet: the request is in flight
    for read in (stream.info, stream.read_all_bytes, lambda: stream.readinto(bytearray(1))):
        with pytest.raises(S3Exception) as raised:
            read()
        _assert_s3_error(raised.value, "NoSuchKey", 404, "GetObject", BUCKET, "missing")
        assert "s3://test-bucket/missing does not exist" in str(raised.value)


@pytest.mark.parametrize("name", sorted(READERS))
def test_reader_of_missing_key_raises_no_such_key(client, name):
    reader = client.get_object(BUCKET, "missing", reader_constructor=READERS[name])
    with pytest.raises(S3Exception) as raised:
        reader.read()
    assert raised.value.code == "NoSuchKey"


# ---------------------------------------------------------------- one bucket


def test_other_buckets_do_not_exist(client):
    client.add_object("k", b"x")
    calls = {
        "GetObject": lambda: client.get_object("other", "k").read(),
        "HeadObject": lambda: client.head_object("other", "k"),
        "DeleteObject": lambda: client.delete_object("other", "k"),
        "PutObject": lambda: client.put_object("other", "k").close(),
        "CopyObject": lambda: client.copy_object(BUCKET, "k", "other", "k"),
        "ListObjectsV2": lambda: list(client.list_objects("other")),
    }
    for operation, call in calls.items():
        with pytest.raises(S3Exception) as raised:
            call()
        key = "" if operation == "ListObjectsV2" else "k"
        if operation == "HeadObject":
            # A HEAD's error has no body to name the bucket: S3 (and so the native client) can only say 404.
            _assert_s3_error(raised.value, "NoSuchKey", 404, operation, "other", key)
            continue
        _assert_s3_error(raised.value, "NoSuchBucket", 404, operation, "other", key)
        assert "bucket 'other' does not exist" in str(raised.value)


def test_errors_pickle_with_their_attributes(client):
    with pytest.raises(S3Exception) as raised:
        client.head_object(BUCKET, "missing")
    copy = pickle.loads(pickle.dumps(raised.value))
    _assert_s3_error(copy, "NoSuchKey", 404, "HeadObject", BUCKET, "missing")


# ---------------------------------------------------------------- PUT


def test_put_object_appears_on_close(client):
    writer = client.put_object(BUCKET, "new")
    writer.write(b"abc")
    assert _keys(client)[0] == []
    writer.close()
    assert client.get_object(BUCKET, "new").read() == b"abc"


def test_put_takes_any_buffer(client):
    ints = array.array("i", [1, 2, 3])
    parts = [b"bytes", bytearray(b"bytearray"), memoryview(b"xxmemoryviewxx")[2:-2], ints, torch.arange(4).numpy()]
    with client.put_object(BUCKET, "mixed") as writer:
        sizes = [writer.write(part) for part in parts]
    expected = b"".join(memoryview(part).tobytes() for part in parts)
    assert sizes == [memoryview(part).nbytes for part in parts]
    assert writer.tell() == len(expected)
    assert client.get_object(BUCKET, "mixed").read() == expected


def test_put_copies_the_callers_buffer(client):
    buf = bytearray(b"first")
    with client.put_object(BUCKET, "obj") as writer:
        writer.write(buf)
        buf[:] = b"later"
    assert client.get_object(BUCKET, "obj").read() == b"first"


def test_put_refuses_str_and_non_contiguous_buffers(client):
    with client.put_object(BUCKET, "obj") as writer:
        with pytest.raises(TypeError):
            writer.write("text")
        with pytest.raises(ValueError):
            writer.write(memoryview(b"abcdef")[::2])


def test_put_abort_leaves_nothing(client):
    writer = client.put_object(BUCKET, "obj")
    writer.write(b"abc")
    writer.abort()
    writer.close()  # after abort: nothing to complete
    assert _keys(client)[0] == []


def test_put_interrupted_by_an_exception_leaves_nothing(client):
    with pytest.raises(RuntimeError):
        with client.put_object(BUCKET, "obj") as writer:
            writer.write(b"abc")
            raise RuntimeError("failed half-way")
    assert _keys(client)[0] == []


def test_put_dropped_unclosed_leaves_nothing(client):
    writer = client.put_object(BUCKET, "obj")
    writer.write(b"abc")
    del writer
    assert _keys(client)[0] == []


def test_writes_after_close_raise(client):
    writer = client.put_object(BUCKET, "obj")
    writer.close()
    with pytest.raises(ValueError):
        writer.write(b"more")
    stream = client._client.put_object(BUCKET, "raw")  # the engine itself refuses too
    stream.close()
    with pytest.raises(RuntimeError):
        stream.write(b"more")


def test_put_overwrites(client):
    client.add_object("obj", b"old")
    with client.put_object(BUCKET, "obj") as writer:
        writer.write(b"new")
    assert client.get_object(BUCKET, "obj").read() == b"new"


def test_put_storage_class(client):
    with client.put_object(BUCKET, "cold", storage_class="STANDARD_IA") as writer:
        writer.write(b"x")
    assert client.head_object(BUCKET, "cold").storage_class == "STANDARD_IA"
    assert _keys(client)[2][0].object_info[0].storage_class == "STANDARD_IA"


def test_put_invalid_storage_class_fails_on_close(client):
    writer = client.put_object(BUCKET, "obj", storage_class="FAST")
    writer.write(b"x")
    with pytest.raises(S3Exception) as raised:
        writer.close()
    _assert_s3_error(raised.value, "InvalidStorageClass", 400, "PutObject", BUCKET, "obj")
    assert _keys(client)[0] == []


# ---------------------------------------------------------------- metadata


def test_etag_last_modified_and_storage_class(client):
    before = int(time.time())
    client.add_object("obj", b"hello")
    after = int(time.time())
    head = client.head_object(BUCKET, "obj")
    (listed,) = _keys(client)[2][0].object_info
    assert head.etag == listed.etag == _etag(b"hello")
    assert head.size == listed.size == 5
    assert before <= head.last_modified == listed.last_modified <= after
    # As S3 sends them: RFC 1123 in headers, ISO 8601 in listings; STANDARD only in listings.
    assert email.utils.parsedate_tz(client._client.head_object(BUCKET, "obj").last_modified) is not None
    assert listed._last_modified.endswith(".000Z")
    assert head.storage_class is None and listed.storage_class == "STANDARD"


def test_head_missing_key(client):
    with pytest.raises(S3Exception) as raised:
        client.head_object(BUCKET, "missing")
    _assert_s3_error(raised.value, "NoSuchKey", 404, "HeadObject", BUCKET, "missing")


def test_delete(client):
    client.add_object("obj", b"x")
    client.delete_object(BUCKET, "obj")
    assert _keys(client)[0] == []
    client.delete_object(BUCKET, "obj")  # deleting a missing key succeeds, as on S3


def test_copy(client):
    client.add_object("src", b"payload")
    client.copy_object(BUCKET, "src", BUCKET, "dst")
    assert client.get_object(BUCKET, "dst").read() == b"payload"
    assert client.head_object(BUCKET, "dst").etag == _etag(b"payload")
    assert client.get_object(BUCKET, "src").read() == b"payload"


def test_copy_missing_source(client):
    with pytest.raises(S3Exception) as raised:
        client.copy_object(BUCKET, "missing", BUCKET, "dst")
    _assert_s3_error(raised.value, "NoSuchKey", 404, "CopyObject", BUCKET, "missing")
    assert "copy source s3://test-bucket/missing does not exist" in str(raised.value)


# ---------------------------------------------------------------- LIST

KEYS = ["b", "a/2", "a/1", "a/sub/x", "a/sub/y", "a+b", "a0", "é", "a/sub2/z", "c/d/e"]


@pytest.fixture
def listed(client):
    for key in KEYS:
        client.add_object(key, key.encode())
    return client


def test_list_is_in_key_order(listed):
    keys, prefixes, pages = _keys(listed)
    assert keys == sorted(KEYS) and prefixes == []
    assert len(pages) == 1
    assert [info.size for info in pages[0].object_info] == [len(k.encode()) for k in sorted(KEYS)]


def test_list_prefix(listed):
    assert _keys(listed, "a/")[0] == ["a/1", "a/2", "a/sub/x", "a/sub/y", "a/sub2/z"]
    assert _keys(listed, "a/sub")[0] == ["a/sub/x", "a/sub/y", "a/sub2/z"]
    assert _keys(listed, "zzz")[0] == []


def test_list_delimiter(listed):
    assert _keys(listed, "", "/")[:2] == (["a+b", "a0", "b", "é"], ["a/", "c/"])
    assert _keys(listed, "a/", "/")[:2] == (["a/1", "a/2"], ["a/sub/", "a/sub2/"])
    assert _keys(listed, "a/sub", "/")[:2] == ([], ["a/sub/", "a/sub2/"])


def test_list_empty_bucket_is_one_empty_page(client):
    keys, prefixes, pages = _keys(client)
    assert (keys, prefixes, len(pages)) == ([], [], 1)


@pytest.mark.parametrize("max_keys", [1, 2, 3, 7])
@pytest.mark.parametrize("prefix, delimiter", [("", ""), ("", "/"), ("a/", "/"), ("a", "")])
def test_list_pages_give_the_same_entries(listed, max_keys, prefix, delimiter):
    expected_keys, expected_prefixes, _ = _keys(listed, prefix, delimiter)
    keys, prefixes, pages = _keys(listed, prefix, delimiter, max_keys)
    assert (keys, prefixes) == (expected_keys, expected_prefixes)
    sizes = [len(page.object_info) + len(page.common_prefixes) for page in pages]
    assert all(size == max_keys for size in sizes[:-1]) and 0 < sizes[-1] <= max_keys


def test_list_common_prefix_counts_once_across_pages(client):
    for key in ["p/1", "p/2", "p/3", "q"]:
        client.add_object(key, b"")
    pages = list(client.list_objects(BUCKET, "", "/", max_keys=1))
    assert [(p.common_prefixes, [o.key for o in p.object_info]) for p in pages] == [(["p/"], []), ([], ["q"])]


def test_list_refuses_a_bad_continuation_token(listed):
    with pytest.raises(S3Exception) as raised:
        listed._client.list_objects(BUCKET, "", "", 10, "not a token!")
    assert (raised.value.code, raised.value.status) == ("InvalidArgument", 400)


# ---------------------------------------------------------------- one version per reader


def test_reader_fails_if_the_object_is_overwritten_between_its_requests(client):
    client.add_object("obj", b"0123456789")
    reader = client.get_object(BUCKET, "obj", reader_constructor=S3ReaderConstructor.range_based(buffer_size=0))
    assert reader.read(4) == b"0123"
    client.add_object("obj", b"abcdefghij")
    with pytest.raises(S3Exception) as raised:
        reader.read(4)
    _assert_s3_error(raised.value, "PreconditionFailed", 412, "GetObject", BUCKET, "obj")
    # A new reader reads the new version.
    assert client.get_object(BUCKET, "obj").read() == b"abcdefghij"


def test_reader_of_an_unchanged_object_reads_across_requests(client):
    client.add_object("obj", b"0123456789")
    reader = client.get_object(BUCKET, "obj", reader_constructor=S3ReaderConstructor.range_based(buffer_size=0))
    client.add_object("other", b"unrelated")
    assert [reader.read(3) for _ in range(4)] == [b"012", b"345", b"678", b"9"]


# ---------------------------------------------------------------- processes


def test_objects_travel_with_the_pickled_client(client):
    client.add_object("obj", b"abc")
    copy = pickle.loads(pickle.dumps(client))
    assert copy.get_object(BUCKET, "obj").read() == b"abc"
    # From then on, two buckets.
    copy.add_object("only-in-copy", b"")
    assert _keys(client)[0] == ["obj"]


# ---------------------------------------------------------------- datasets and checkpoints on it


def _client_with(keys) -> MockS3Client:
    client = MockS3Client(REGION, BUCKET)
    for key in keys:
        client.add_object(key, f"{BUCKET}-{key}-data".encode())
    return client


@pytest.mark.parametrize("name", sorted(READERS))
def test_map_dataset_from_objects(name):
    keys = ["obj1", "obj2", "dir/obj3"]
    dataset = S3MapDataset.from_objects(
        [f"s3://{BUCKET}/{key}" for key in keys],
        region=REGION,
        transform=key_and_bytes,
        reader_constructor=READERS[name],
    )
    dataset._client = _client_with(keys)  # how the original's users inject the mock
    assert len(dataset) == 3
    assert [dataset[i] for i in range(3)] == [(key, f"{BUCKET}-{key}-data".encode()) for key in keys]


@pytest.mark.parametrize("name", sorted(READERS))
def test_map_dataset_from_prefix(name):
    dataset = S3MapDataset.from_prefix(
        f"s3://{BUCKET}/train/", region=REGION, transform=key_and_bytes, reader_constructor=READERS[name]
    )
    dataset._client = _client_with(["train/b", "train/a", "test/c", "trainer"])
    assert [dataset[i][0] for i in range(len(dataset))] == ["train/a", "train/b"]
    assert dataset[1][1] == b"test-bucket-train/b-data"


@pytest.mark.parametrize("name", sorted(READERS))
def test_iterable_dataset_from_objects_and_from_prefix(name):
    keys = ["x/2", "x/1", "y"]
    from_objects = S3IterableDataset.from_objects(
        [f"s3://{BUCKET}/{key}" for key in keys],
        region=REGION,
        transform=key_and_bytes,
        reader_constructor=READERS[name],
    )
    from_prefix = S3IterableDataset.from_prefix(
        f"s3://{BUCKET}/x/", region=REGION, transform=key_and_bytes, reader_constructor=READERS[name]
    )
    from_objects._client = from_prefix._client = _client_with(keys)
    assert [key for key, _ in from_objects] == keys  # in the order given
    assert list(from_prefix) == [(k, f"{BUCKET}-{k}-data".encode()) for k in ["x/1", "x/2"]]  # in key order


def test_checkpoint_round_trip():
    checkpoint = S3Checkpoint(region=REGION)
    checkpoint._client = MockS3Client(REGION, BUCKET)
    state = {"weights": torch.arange(1000, dtype=torch.float32).reshape(10, 100), "step": 7}
    with checkpoint.writer(f"s3://{BUCKET}/ckpt/epoch-1.pt") as writer:
        torch.save(state, writer)
    with checkpoint.reader(f"s3://{BUCKET}/ckpt/epoch-1.pt") as reader:
        loaded = torch.load(reader, weights_only=True)
    assert loaded["step"] == 7 and torch.equal(loaded["weights"], state["weights"])
    with pytest.raises(S3Exception):
        checkpoint.reader(f"s3://{BUCKET}/ckpt/epoch-2.pt").read()


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_dataloader_workers_read_the_objects(start_method):
    keys = [f"sample-{i:02d}" for i in range(20)]
    # A transform a spawned worker can unpickle without importing this test module.
    dataset = S3MapDataset.from_prefix(f"s3://{BUCKET}/", region=REGION, transform=operator.methodcaller("read"))
    dataset._client = _client_with(keys)
    loader = DataLoader(dataset, batch_size=4, num_workers=2, multiprocessing_context=start_method, collate_fn=list)
    samples = [sample for batch in loader for sample in batch]
    assert samples == [f"{BUCKET}-{key}-data".encode() for key in keys]


def test_metrics_count_requests_and_bytes(client):
    client.add_object("a", b"12345")
    with client.put_object(BUCKET, "b") as writer:
        writer.write(b"xyz")
    client.get_object(BUCKET, "a").read()
    client.head_object(BUCKET, "b")
    list(client.list_objects(BUCKET))
    operations = client.metrics()["operations"]
    assert {name: (c["requests"], c["bytes"]) for name, c in operations.items()} == {
        "PutObject": (1, 3),
        "GetObject": (1, 5),
        "HeadObject": (1, 0),
        "ListObjectsV2": (1, 0),
    }
    assert operations["GetObject"]["duration_ms"] == {"p50": None, "p90": None, "p99": None}
