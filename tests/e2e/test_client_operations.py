"""End-to-end operations of S3Client and the native client against moto: what users rely on."""

import email.utils
import gc
import hashlib
import io
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import numpy as np
import pytest
from boto3.s3.transfer import TransferConfig
from samples import payload

from s3torchconnector import S3Exception, S3ReaderConstructor
from s3torchconnector._s3client import S3Client, S3ClientConfig

MIB = 1024 * 1024
PART = 5 * MIB
RAGGED = 3 * PART + 123  # four parts, the last one short


@pytest.fixture(scope="module")
def client(s3_endpoint) -> S3Client:
    return S3Client("us-east-1", endpoint=s3_endpoint, s3client_config=S3ClientConfig(part_size=PART))


@pytest.fixture(scope="module")
def native(client):
    return client._client


@pytest.fixture(scope="module")
def ragged_object(s3_endpoint):
    """A bucket holding 'ragged' (RAGGED bytes), shared by the read tests of this module."""
    b3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"ragged-{uuid.uuid4().hex[:12]}"
    b3.create_bucket(Bucket=bucket)
    data = payload(RAGGED, seed=7)
    b3.put_object(Bucket=bucket, Key="ragged", Body=data)
    return bucket, "ragged", data


def put(client: S3Client, bucket: str, key: str, data: bytes, chunk: int = 0, **kwargs) -> None:
    with client.put_object(bucket, key, **kwargs) as writer:
        if chunk:
            for start in range(0, len(data), chunk):
                writer.write(data[start : start + chunk])
        elif data:
            writer.write(data)


def read_all(stream) -> bytes:
    return bytes(stream.read_all_bytes())


def read_chunks(stream) -> bytes:
    chunks = []
    while True:
        chunk = stream.next_chunk()
        if chunk is None:
            break
        assert len(chunk) > 0, "next_chunk returned an empty chunk before the end"
        chunks.append(bytes(chunk))
    assert stream.next_chunk() is None, "the end of a stream must stay the end"
    return b"".join(chunks)


def read_into(stream, size: int = 64 * 1024 + 3) -> bytes:
    out = bytearray()
    buffer = bytearray(size)
    while True:
        n = stream.readinto(buffer)
        assert 0 <= n <= size
        if n == 0:
            break
        out += buffer[:n]
    assert stream.readinto(buffer) == 0, "the end of a stream must stay the end"
    return bytes(out)


READERS = {"read_all": read_all, "next_chunk": read_chunks, "readinto": read_into}


# ---------------------------------------------------------------- put / get round trips


@pytest.mark.parametrize("size", [0, 1, PART, RAGGED], ids=["0B", "1B", "one-part", "ragged-parts"])
def test_round_trip_one_write(s3, client, size):
    data = payload(size, seed=size)
    put(client, s3.bucket, "obj", data)
    assert s3.get("obj") == data
    assert client.get_object(s3.bucket, "obj").read() == data
    assert client.head_object(s3.bucket, "obj").size == size
    assert s3.multipart_uploads() == []


@pytest.mark.parametrize("size", [1, PART, RAGGED], ids=["1B", "one-part", "ragged-parts"])
def test_round_trip_many_small_writes(s3, client, size):
    data = payload(size, seed=size + 1)
    with client.put_object(s3.bucket, "obj") as writer:
        for start in range(0, size, 100_003):
            piece = data[start : start + 100_003]
            assert writer.write(piece) == len(piece)
            assert writer.tell() == start + len(piece)
    assert writer.closed
    assert s3.get("obj") == data
    assert client.get_object(s3.bucket, "obj").read() == data


def test_many_one_byte_writes(s3, client):
    data = payload(3000, seed=3)
    with client.put_object(s3.bucket, "bytes") as writer:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
    assert s3.get("bytes") == data


def test_empty_writes_are_harmless(s3, client):
    with client.put_object(s3.bucket, "e") as writer:
        assert writer.write(b"") == 0
        writer.write(b"abc")
        writer.write(bytearray())
    assert s3.get("e") == b"abc"


@pytest.mark.parametrize("size", [100, PART + 17], ids=["small", "multipart"])
def test_write_bytes_like_types(s3, client, size):
    base = payload(size, seed=11)
    pieces = [
        base[: size // 5],
        bytearray(base[size // 5 : 2 * size // 5]),
        memoryview(base)[2 * size // 5 : 3 * size // 5],
        memoryview(bytearray(base[3 * size // 5 : 4 * size // 5])),
        np.frombuffer(base[4 * size // 5 :], dtype=np.uint8).copy(),
    ]
    with client.put_object(s3.bucket, "mixed") as writer:
        for piece in pieces:
            assert writer.write(piece) == len(memoryview(piece).cast("B"))
        assert writer.tell() == size
    assert s3.get("mixed") == base


def test_write_numpy_arrays(s3, client):
    floats = np.arange(100_000, dtype=np.float32)
    matrix = np.arange(60, dtype=np.int64).reshape(6, 10)
    with client.put_object(s3.bucket, "arrays") as writer:
        assert writer.write(floats) == floats.nbytes
        assert writer.write(matrix) == matrix.nbytes
        assert writer.tell() == floats.nbytes + matrix.nbytes
    body = s3.get("arrays")
    assert body == floats.tobytes() + matrix.tobytes()
    assert np.array_equal(np.frombuffer(body[: floats.nbytes], dtype=np.float32), floats)


def test_write_rejects_str_and_non_contiguous_buffers(s3, client):
    with client.put_object(s3.bucket, "k") as writer:
        with pytest.raises(TypeError):
            writer.write("text")
        with pytest.raises(ValueError):
            writer.write(np.arange(100, dtype=np.int32)[::2])
        with pytest.raises(ValueError):
            writer.write(memoryview(b"abcdef")[::2])


def test_overwrite_replaces_the_object(s3, client):
    put(client, s3.bucket, "k", b"first version")
    put(client, s3.bucket, "k", b"second")
    assert s3.get("k") == b"second"
    assert client.get_object(s3.bucket, "k").read() == b"second"


def test_writer_file_like_surface(s3, client):
    writer = client.put_object(s3.bucket, "f")
    assert writer.writable() and not writer.readable() and not writer.seekable()
    assert (writer.bucket, writer.key) == (s3.bucket, "f")
    writer.write(b"x")
    writer.close()
    assert writer.closed and not writer.writable()
    assert s3.get("f") == b"x"


# ---------------------------------------------------------------- reads


def test_a_part_size_under_5_mib_reads_in_its_parts_and_uploads_in_5_mib_parts(s3):
    """The original accepts part sizes S3 would refuse for upload parts: reads use them, uploads use S3's 5 MiB
    minimum (one PUT up to 5 MiB)."""
    client = S3Client(s3.region, endpoint=s3.endpoint, s3client_config=S3ClientConfig(part_size=756))
    data = payload(20_000, seed=3)
    s3.put("small", data)
    for reader in (S3ReaderConstructor.sequential(), S3ReaderConstructor.range_based()):
        assert client.get_object(s3.bucket, "small", reader_constructor=reader).read() == data
    stream = client._client.get_object(s3.bucket, "small")  # a stream of 756-byte parts
    assert b"".join(iter(lambda: bytes(stream.next_chunk() or b""), b"")) == data
    one_put, two_parts = payload(5 * MIB, seed=4), payload(6 * MIB, seed=5)
    put(client, s3.bucket, "one-put", one_put)
    put(client, s3.bucket, "two-parts", two_parts)
    assert s3.get("one-put") == one_put and s3.get("two-parts") == two_parts
    assert "-" not in s3.boto3.head_object(Bucket=s3.bucket, Key="one-put")["ETag"]  # not a multipart upload
    assert s3.boto3.head_object(Bucket=s3.bucket, Key="two-parts")["ETag"].endswith('-2"')  # 5 MiB + 1 MiB


def test_connections_go_through_the_network_interfaces_given(s3):
    """Bound to the loopback interface, requests to 127.0.0.1 pass; bound to another, they cannot reach it."""
    import socket

    s3.put("k", b"through lo")
    through_lo = S3Client(
        s3.region, endpoint=s3.endpoint, s3client_config=S3ClientConfig(network_interface_names=["lo"])
    )
    assert through_lo.get_object(s3.bucket, "k").read() == b"through lo"
    others = [name for _, name in socket.if_nameindex() if name != "lo"]
    assert others, "this test needs a network interface besides lo"
    elsewhere = S3ClientConfig(network_interface_names=[others[0]], max_attempts=1)
    with pytest.raises(S3Exception):
        S3Client(s3.region, endpoint=s3.endpoint, s3client_config=elsewhere).head_object(s3.bucket, "k")


def test_a_client_works_within_the_memory_limit_given(s3):
    data = payload(3 * PART, seed=9)
    s3.put("k", data)
    config = S3ClientConfig(part_size=PART, memory_limit_bytes=256 * MIB)
    client = S3Client(s3.region, endpoint=s3.endpoint, s3client_config=config)
    assert client.get_object(s3.bucket, "k").read() == data
    put(client, s3.bucket, "copy", data)
    assert s3.get("copy") == data


def test_sequential_reader_is_the_default(s3, client, ragged_object):
    bucket, key, data = ragged_object
    reader = client.get_object(bucket, key)
    assert S3ReaderConstructor.get_reader_type_string(None) == "sequential"
    assert (reader.bucket, reader.key, reader.uri) == (bucket, key, f"s3://{bucket}/{key}")
    assert reader.read(10) == data[:10]
    assert reader.tell() == 10
    assert reader.read(PART) == data[10 : PART + 10]
    assert reader.seek(PART - 3) == PART - 3
    assert reader.read(6) == data[PART - 3 : PART + 3]
    assert reader.seek(-5, io.SEEK_END) == RAGGED - 5
    assert reader.read() == data[-5:]
    assert reader.read() == b""
    reader.seek(0)
    assert reader.read() == data


def test_sequential_reader_readinto_small_buffer(client, ragged_object):
    bucket, key, data = ragged_object
    reader = client.get_object(bucket, key)
    out = bytearray()
    buffer = bytearray(1_000_003)
    while n := reader.readinto(buffer):
        out += buffer[:n]
    assert bytes(out) == data


def test_range_based_reader(client, ragged_object):
    bucket, key, data = ragged_object
    reader = client.get_object(bucket, key, reader_constructor=S3ReaderConstructor.range_based(buffer_size=1024))
    reader.seek(PART - 10)
    assert reader.read(20) == data[PART - 10 : PART + 10]
    reader.seek(2 * PART - 1)
    assert reader.read(PART + 2) == data[2 * PART - 1 : 3 * PART + 1]
    reader.seek(-3, io.SEEK_END)
    assert reader.read(100) == data[-3:]
    assert reader.read(1) == b""


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "streaming"])
@pytest.mark.parametrize("how", list(READERS))
def test_native_stream_reads_whole_object(native, ragged_object, how, whole):
    bucket, key, data = ragged_object
    stream = native.get_object(bucket, key, None, None, whole)
    assert READERS[how](stream) == data
    stream.close()


def test_native_stream_info(native, s3, ragged_object):
    bucket, key, data = ragged_object
    stream = native.get_object(bucket, key, None, None, False)
    info = stream.info()
    assert info.size == len(data)
    assert info.etag == s3.boto3.head_object(Bucket=bucket, Key=key)["ETag"]
    assert read_all(stream) == data


def test_native_stream_mixed_read_calls(native, ragged_object):
    bucket, key, data = ragged_object
    stream = native.get_object(bucket, key, None, None, False)
    first = bytearray(1000)
    assert stream.readinto(first) == 1000
    chunk = bytes(stream.next_chunk())
    rest = read_all(stream)
    assert bytes(first) + chunk + rest == data
    assert read_all(stream) == b""
    assert stream.next_chunk() is None


def test_native_stream_buffer_exposes_buffer_protocol(native, ragged_object):
    bucket, key, data = ragged_object
    buffer = native.get_object(bucket, key, 0, 100, False).next_chunk()
    view = memoryview(buffer)
    assert len(buffer) == 100 and view.nbytes == 100 and view.readonly is False
    assert np.frombuffer(buffer, dtype=np.uint8).tobytes() == data[:100]


RANGES = {
    "first-byte": (0, 1),
    "last-byte": (RAGGED - 1, RAGGED),
    "across-one-boundary": (PART - 10, PART + 10),
    "across-two-boundaries": (PART - 1, 3 * PART + 1),
    "from-offset-to-end": (2 * PART + 5, None),
    "from-start-to-offset": (None, PART + 1),
    "end-past-object": (RAGGED - 5, RAGGED + 1000),
    "start-at-end": (RAGGED, None),
    "start-past-end": (RAGGED + 10, RAGGED + 20),
    "start-past-end-open": (RAGGED + 10, None),
    "empty-range": (123, 123),
}


@pytest.mark.parametrize("how", list(READERS))
@pytest.mark.parametrize("name", list(RANGES))
def test_ranges(client, ragged_object, name, how):
    bucket, key, data = ragged_object
    start, end = RANGES[name]
    stream = client._get_object_stream(bucket, key, start, end)
    expected = data[start or 0 : len(data) if end is None else end]
    assert READERS[how](stream) == expected


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "streaming"])
def test_native_range_with_whole_flag(native, ragged_object, whole):
    bucket, key, data = ragged_object
    stream = native.get_object(bucket, key, PART - 7, 2 * PART + 7, whole)
    assert stream.info().size == len(data), "info().size is the whole object's size"
    assert read_all(stream) == data[PART - 7 : 2 * PART + 7]


def test_close_stream_midway_then_client_still_works(native, ragged_object):
    bucket, key, data = ragged_object
    stream = native.get_object(bucket, key, None, None, False)
    assert len(stream.next_chunk()) > 0
    stream.close()
    stream.close()
    assert read_all(native.get_object(bucket, key, 0, 10, False)) == data[:10]


def test_reader_close(client, ragged_object):
    bucket, key, _ = ragged_object
    reader = client.get_object(bucket, key)
    reader.close()
    assert reader.closed
    with pytest.raises(ValueError):
        reader.read()


def test_concurrent_reads_from_threads(client, ragged_object):
    bucket, key, data = ragged_object
    ranges = [(i * 1_000_000, i * 1_000_000 + 777_777) for i in range(12)]

    def fetch(r):
        return bytes(client._get_object_stream(bucket, key, *r).read_all_bytes())

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(fetch, ranges))
    assert results == [data[s:e] for s, e in ranges]


# ---------------------------------------------------------------- keys with special characters

SPECIAL_KEYS = [
    "with space",
    "unicode-ü-日本語-🙂",
    "plus+sign",
    "percent%41literal",
    "percent%",
    "equals=sign&amp",
    "nested/dir/key",
    "tilde~",
    "star*",
    "single'quote",
    'double"quote',
    "question?mark",
    "hash#mark",
    "semi;colon,comma",
    "brackets[]()",
    "all of them ü+%=~*'\"/?#x",
]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_special_key_round_trip(s3, client, key):
    data = key.encode() * 3
    put(client, s3.bucket, key, data)
    assert s3.keys() == [key]
    assert s3.get(key) == data
    assert client.get_object(s3.bucket, key).read() == data
    assert client.head_object(s3.bucket, key).size == len(data)
    pages = list(client.list_objects(s3.bucket, prefix=key))
    assert [o.key for p in pages for o in p.object_info] == [key]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_special_key_written_by_boto3(s3, client, key):
    s3.put(key, b"from boto3")
    assert client.get_object(s3.bucket, key).read() == b"from boto3"
    assert bytes(client._get_object_stream(s3.bucket, key, 5, 10).read_all_bytes()) == b"boto3"


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_special_key_copy_and_delete(s3, client, key):
    s3.put(key, b"payload " + key.encode())
    client.copy_object(s3.bucket, key, s3.bucket, key + " copy+%")
    assert s3.get(key + " copy+%") == b"payload " + key.encode()
    client.delete_object(s3.bucket, key)
    assert s3.keys() == [key + " copy+%"]


# ---------------------------------------------------------------- head, delete, copy, storage class


def test_client_reports_its_region_and_endpoint(s3_endpoint):
    """What it was made with (plugins and logs read them); no endpoint given reads as None."""
    client = S3Client("eu-central-1", endpoint=s3_endpoint)
    assert (client.region, client.endpoint) == ("eu-central-1", s3_endpoint)
    default = S3Client("ap-southeast-2")
    assert (default.region, default.endpoint) == ("ap-southeast-2", None)


def test_head_object(s3, client):
    data = payload(1234)
    s3.put("h", data)
    head = client.head_object(s3.bucket, "h")
    b3 = s3.boto3.head_object(Bucket=s3.bucket, Key="h")
    assert head.size == 1234
    assert head.etag == b3["ETag"]
    assert head.etag.strip('"') == hashlib.md5(data).hexdigest()
    assert head.storage_class == b3.get("StorageClass")  # STANDARD is not sent in HEAD responses


def test_head_object_restore_status_of_an_archived_object(s3, client):
    s3.boto3.put_object(Bucket=s3.bucket, Key="cold", Body=b"x", StorageClass="GLACIER")
    head = client.head_object(s3.bucket, "cold")
    assert head.storage_class == "GLACIER" and head.restore_status is None  # never restored
    s3.boto3.restore_object(Bucket=s3.bucket, Key="cold", RestoreRequest={"Days": 2})
    b3 = s3.boto3.head_object(Bucket=s3.bucket, Key="cold")
    status = client.head_object(s3.bucket, "cold").restore_status
    assert status is not None
    assert status.in_progress is ('ongoing-request="true"' in b3["Restore"])
    if not status.in_progress:
        expiry = b3["Restore"].split('expiry-date="')[1].rstrip('"')
        assert status.expiry == int(email.utils.parsedate_to_datetime(expiry).timestamp())


def test_head_object_last_modified(s3, client):
    s3.put("h", b"x")
    head = client.head_object(s3.bucket, "h")
    b3 = s3.boto3.head_object(Bucket=s3.bucket, Key="h")
    assert isinstance(head.last_modified, int)
    assert head.last_modified == int(b3["LastModified"].timestamp())


def test_head_object_of_multipart_object(s3, client):
    put(client, s3.bucket, "mp", payload(RAGGED))
    head = client.head_object(s3.bucket, "mp")
    assert head.size == RAGGED
    assert head.etag == s3.boto3.head_object(Bucket=s3.bucket, Key="mp")["ETag"]
    assert head.etag.endswith('-4"'), "a 5 MiB part size makes four parts of this object"


def test_reader_uses_given_object_info(s3, client):
    from s3torchconnector._s3client import HeadObjectResult

    s3.put("k", b"0123456789")
    reader = client.get_object(s3.bucket, "k", object_info=HeadObjectResult('"e"', 10))
    assert reader.get_object_info().size == 10
    assert reader.seek(0, io.SEEK_END) == 10
    reader.seek(4)
    assert reader.read() == b"456789"


@pytest.mark.parametrize("size", [10, PART + 3], ids=["small", "over-one-part"])
@pytest.mark.parametrize("error", [0, -3, 3, "zero"])
def test_reader_with_stale_object_info_reads_the_real_object(s3, client, size, error):
    """A listing's size can be out of date by the time the object is read: the bytes must not be."""
    from s3torchconnector._s3client import HeadObjectResult

    data = payload(size, seed=9)
    s3.put("k", data)
    hint = 0 if error == "zero" else size + error
    reader = client.get_object(s3.bucket, "k", object_info=HeadObjectResult('"stale"', hint))
    assert reader.read() == data


def test_delete_object(s3, client):
    s3.put("a", b"1")
    s3.put("b", b"2")
    client.delete_object(s3.bucket, "a")
    assert s3.keys() == ["b"]
    with pytest.raises(S3Exception) as raised:
        client.get_object(s3.bucket, "a").read()
    assert raised.value.code == "NoSuchKey"


def test_delete_missing_key_is_not_an_error(s3, client):
    client.delete_object(s3.bucket, "never-existed")  # S3 answers 204 for this, like any delete
    assert s3.keys() == []


@pytest.mark.parametrize("size", [0, 1000, PART + 1], ids=["empty", "small", "over-one-part"])
def test_copy_object(s3, client, size):
    data = payload(size, seed=5)
    s3.put("src", data)
    client.copy_object(s3.bucket, "src", s3.bucket, "dst")
    assert s3.get("dst") == data
    assert s3.get("src") == data
    assert client.get_object(s3.bucket, "dst").read() == data


def test_copy_object_across_buckets(s3, client):
    other = f"other-{uuid.uuid4().hex[:12]}"
    s3.boto3.create_bucket(Bucket=other)
    s3.put("dir/src file+1", b"across")
    client.copy_object(s3.bucket, "dir/src file+1", other, "ü/dst=%2")
    assert s3.boto3.get_object(Bucket=other, Key="ü/dst=%2")["Body"].read() == b"across"


def test_copy_object_overwrites_destination(s3, client):
    s3.put("src", b"new")
    s3.put("dst", b"old content")
    client.copy_object(s3.bucket, "src", s3.bucket, "dst")
    assert s3.get("dst") == b"new"


@pytest.mark.parametrize("size", [10, PART + 10], ids=["single-put", "multipart"])
@pytest.mark.parametrize("storage_class", ["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING"])
def test_put_object_storage_class(s3, client, size, storage_class):
    put(client, s3.bucket, "sc", payload(size), storage_class=storage_class)
    assert s3.boto3.head_object(Bucket=s3.bucket, Key="sc")["StorageClass"] == storage_class
    assert client.head_object(s3.bucket, "sc").storage_class == storage_class
    listed = [o for p in client.list_objects(s3.bucket) for o in p.object_info]
    assert [(o.key, o.storage_class) for o in listed] == [("sc", storage_class)]
    assert client.get_object(s3.bucket, "sc").read() == payload(size)


def test_put_object_standard_storage_class(s3, client):
    put(client, s3.bucket, "sc", b"abc", storage_class="STANDARD")
    listed = s3.boto3.list_objects_v2(Bucket=s3.bucket)["Contents"]
    assert listed[0]["StorageClass"] == "STANDARD"
    assert s3.get("sc") == b"abc"


# ---------------------------------------------------------------- listing


@pytest.fixture(scope="module")
def listing_bucket(s3_endpoint):
    """1203 small objects under 'many/' plus a small tree for delimiter tests."""
    b3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"listing-{uuid.uuid4().hex[:12]}"
    b3.create_bucket(Bucket=bucket)
    objects = {f"many/{i:05d}": b"x" * (i % 13) for i in range(1203)}
    objects.update({k: k.encode() for k in ["tree/a/1", "tree/a/2", "tree/b/c/1", "tree/c", "tree/d", "top"]})
    try:
        # The server runs in this process: filling its store directly takes 0.1 s instead of 10.
        from moto.s3.models import s3_backends

        backend = s3_backends["123456789012"]["aws"]
        for key, body in objects.items():
            backend.put_object(bucket, key, body)
    except Exception:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda kv: b3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))
    # What the tests compare against is what the server holds, as boto3 lists it.
    stored = {
        item["Key"]: item["Size"]
        for page in b3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    }
    assert stored == {key: len(body) for key, body in objects.items()}
    return bucket, objects


def test_list_more_than_one_page(client, listing_bucket):
    bucket, objects = listing_bucket
    pages = list(client.list_objects(bucket, prefix="many/"))
    assert [len(p.object_info) for p in pages] == [1000, 203]
    listed = [o for p in pages for o in p.object_info]
    keys = [o.key for o in listed]
    assert len(keys) == len(set(keys)) == 1203
    assert keys == sorted(k for k in objects if k.startswith("many/"))
    assert all(o.size == len(objects[o.key]) for o in listed)
    assert all(p.common_prefixes == [] for p in pages)


def test_list_whole_bucket(client, listing_bucket):
    bucket, objects = listing_bucket
    keys = [o.key for p in client.list_objects(bucket) for o in p.object_info]
    assert keys == sorted(objects)


def test_list_max_keys(client, listing_bucket):
    bucket, objects = listing_bucket
    pages = list(client.list_objects(bucket, prefix="many/00", max_keys=100))
    assert [len(p.object_info) for p in pages] == [100] * 10
    keys = [o.key for p in pages for o in p.object_info]
    assert keys == sorted(k for k in objects if k.startswith("many/00"))


def test_list_max_keys_one(client, listing_bucket):
    bucket, _ = listing_bucket
    pages = list(client.list_objects(bucket, prefix="many/0120", max_keys=1))
    assert [[o.key for o in p.object_info] for p in pages] == [["many/01200"], ["many/01201"], ["many/01202"]]


def test_list_prefix(client, listing_bucket):
    bucket, _ = listing_bucket
    keys = [o.key for p in client.list_objects(bucket, prefix="many/011") for o in p.object_info]
    assert keys == [f"many/{i:05d}" for i in range(1100, 1200)]
    keys = [o.key for p in client.list_objects(bucket, prefix="tree/a") for o in p.object_info]
    assert keys == ["tree/a/1", "tree/a/2"]


def test_list_delimiter(client, listing_bucket):
    bucket, _ = listing_bucket
    pages = list(client.list_objects(bucket, prefix="tree/", delimiter="/"))
    assert len(pages) == 1
    assert [o.key for o in pages[0].object_info] == ["tree/c", "tree/d"]
    assert pages[0].common_prefixes == ["tree/a/", "tree/b/"]


def test_list_delimiter_at_root(client, listing_bucket):
    bucket, _ = listing_bucket
    pages = list(client.list_objects(bucket, delimiter="/"))
    assert [o.key for p in pages for o in p.object_info] == ["top"]
    assert [c for p in pages for c in p.common_prefixes] == ["many/", "tree/"]


def test_list_delimiter_paginated(client, listing_bucket):
    bucket, _ = listing_bucket
    pages = list(client.list_objects(bucket, prefix="tree/", delimiter="/", max_keys=1))
    entries = [o.key for p in pages for o in p.object_info] + [c for p in pages for c in p.common_prefixes]
    assert sorted(entries) == ["tree/a/", "tree/b/", "tree/c", "tree/d"]
    assert all(len(p.object_info) + len(p.common_prefixes) <= 1 for p in pages)


def test_list_no_match_yields_one_empty_page(client, listing_bucket):
    bucket, _ = listing_bucket
    pages = list(client.list_objects(bucket, prefix="nothing-here/"))
    assert len(pages) == 1
    assert pages[0].object_info == [] and pages[0].common_prefixes == []


def test_list_empty_bucket(s3, client):
    pages = list(client.list_objects(s3.bucket))
    assert len(pages) == 1 and pages[0].object_info == [] and pages[0].common_prefixes == []


def test_list_prefix_with_special_characters(s3, client):
    for key in ["a b/1", "a b/2", "a+b/1", "a%b/1", "ü/1"]:
        s3.put(key, b"x")
    for prefix, expected in [("a b/", ["a b/1", "a b/2"]), ("a+b/", ["a+b/1"]), ("a%b", ["a%b/1"]), ("ü", ["ü/1"])]:
        assert [o.key for p in client.list_objects(s3.bucket, prefix=prefix) for o in p.object_info] == expected


def test_list_metadata_matches_boto3(s3, client):
    for i in range(5):
        s3.put(f"m/{i}", payload(100 * i, seed=i))
    put(client, s3.bucket, "m/multipart", payload(PART + 1))
    ours = {o.key: o for p in client.list_objects(s3.bucket) for o in p.object_info}
    theirs = {o["Key"]: o for o in s3.boto3.list_objects_v2(Bucket=s3.bucket)["Contents"]}
    assert set(ours) == set(theirs)
    for key, info in ours.items():
        assert info.etag == theirs[key]["ETag"]
        assert info.size == theirs[key]["Size"]
        assert info.storage_class == theirs[key]["StorageClass"] == "STANDARD"
        assert isinstance(info.last_modified, int)
        assert abs(info.last_modified - theirs[key]["LastModified"].timestamp()) < 1
        # The server's own clock, to the second, as its HEAD response states it: seconds since the
        # epoch in UTC (not milliseconds, not local time).
        head = s3.boto3.head_object(Bucket=s3.bucket, Key=key)
        assert info.last_modified == int(head["LastModified"].timestamp()), key


def test_list_objects_is_lazy(s3, client, listing_bucket):
    bucket, _ = listing_bucket
    pages = client.list_objects(bucket, prefix="many/", max_keys=500)
    first = next(iter(pages))
    assert len(first.object_info) == 500
    assert first.object_info[0].key == "many/00000"


# ---------------------------------------------------------------- interop with boto3


def test_boto3_reads_our_multipart_object(s3, client):
    data = payload(RAGGED, seed=21)
    put(client, s3.bucket, "ours", data, chunk=1_000_000)
    body = s3.boto3.get_object(Bucket=s3.bucket, Key="ours")
    assert body["ContentLength"] == RAGGED
    assert body["Body"].read() == data
    ranged = s3.boto3.get_object(Bucket=s3.bucket, Key="ours", Range=f"bytes={PART - 2}-{PART + 1}")
    assert ranged["Body"].read() == data[PART - 2 : PART + 2]


def test_we_read_boto3_multipart_upload(s3, client):
    data = payload(2 * PART + 4321, seed=22)
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, use_threads=False)
    s3.boto3.upload_fileobj(io.BytesIO(data), s3.bucket, "theirs", Config=config)
    etag = s3.boto3.head_object(Bucket=s3.bucket, Key="theirs")["ETag"]
    assert etag.endswith('-3"'), "boto3 made a multipart upload"
    assert client.get_object(s3.bucket, "theirs").read() == data
    assert client.head_object(s3.bucket, "theirs").etag == etag
    stream = client._get_object_stream(s3.bucket, "theirs", PART - 1, 2 * PART + 1)
    assert read_chunks(stream) == data[PART - 1 : 2 * PART + 1]


def test_we_read_boto3_small_object(s3, client):
    s3.put("small", b"hello world")
    assert client.get_object(s3.bucket, "small").read() == b"hello world"


# ---------------------------------------------------------------- aborts


class Boom(Exception):
    pass


def test_exception_in_with_block_leaves_nothing(s3, client):
    with pytest.raises(Boom):
        with client.put_object(s3.bucket, "aborted") as writer:
            for _ in range(3):
                writer.write(payload(PART + 1000))
            raise Boom()
    assert writer.closed
    assert s3.keys() == []
    assert s3.multipart_uploads() == []


def test_exception_in_with_block_before_first_part_leaves_nothing(s3, client):
    with pytest.raises(Boom):
        with client.put_object(s3.bucket, "aborted") as writer:
            writer.write(b"small")
            raise Boom()
    assert s3.keys() == []


def test_failed_overwrite_keeps_the_old_object(s3, client):
    s3.put("k", b"old")
    with pytest.raises(Boom):
        with client.put_object(s3.bucket, "k") as writer:
            writer.write(payload(2 * PART + 1))
            raise Boom()
    assert s3.get("k") == b"old"
    assert s3.multipart_uploads() == []


@pytest.mark.parametrize("size", [10, 2 * PART + 10], ids=["pending", "multipart"])
def test_abort(s3, client, size):
    writer = client.put_object(s3.bucket, "aborted")
    writer.write(payload(size))
    writer.abort()
    writer.abort()
    writer.close()  # after an abort, close does not publish anything
    assert writer.closed
    assert s3.keys() == []
    assert s3.multipart_uploads() == []


@pytest.mark.parametrize("size", [10, 2 * PART + 10], ids=["pending", "multipart"])
def test_dropped_writer_leaves_nothing(s3, client, size):
    writer = client.put_object(s3.bucket, "dropped")
    writer.write(payload(size))
    del writer
    gc.collect()
    assert s3.keys() == []
    assert s3.multipart_uploads() == []
    # the client is still fine afterwards
    put(client, s3.bucket, "after", b"ok")
    assert s3.get("after") == b"ok"


def test_write_after_close_raises(s3, client):
    writer = client.put_object(s3.bucket, "k")
    writer.write(b"abc")
    writer.close()
    with pytest.raises(ValueError):
        writer.write(b"more")
    writer.close()
    assert s3.get("k") == b"abc"


def test_write_after_abort_raises(s3, client):
    writer = client.put_object(s3.bucket, "k")
    writer.abort()
    with pytest.raises(ValueError):
        writer.write(b"more")
    assert s3.keys() == []


def test_native_put_stream(s3, native):
    stream = native.put_object(s3.bucket, "native", "")
    assert stream.write(b"abc") == 3
    assert stream.write(memoryview(payload(PART))) == PART
    assert stream.bytes_written == PART + 3
    stream.close()
    stream.close()
    assert s3.get("native") == b"abc" + payload(PART)
    aborted = native.put_object(s3.bucket, "native-aborted", "")
    aborted.write(payload(PART + 1))
    aborted.abort()
    assert s3.keys() == ["native"]
    assert s3.multipart_uploads() == []


# ---------------------------------------------------------------- a fresh client per use


def test_client_properties(s3_endpoint):
    config = S3ClientConfig(part_size=PART, max_attempts=3)
    client = S3Client("eu-west-1", endpoint=s3_endpoint, s3client_config=config)
    assert client.region == "eu-west-1"
    assert client.endpoint == s3_endpoint
    assert client.s3client_config is config
    assert client.user_agent_prefix.startswith("s3torchconnector/")


def test_endpoint_from_environment(s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
    client = S3Client("us-east-1")
    s3.put("k", b"via env")
    assert client.get_object(s3.bucket, "k").read() == b"via env"


# ---------------------------------------------------------------- what goes on the wire


@pytest.fixture
def recording_server():
    """Answers every request with 404 and no body, remembering each request's headers."""
    import http.server
    import threading

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_HEAD(self):
            seen.append((self.command, self.path, dict(self.headers)))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_requests_carry_user_agent_and_requester_pays(recording_server):
    from s3torchconnector._user_agent import UserAgent

    endpoint, seen = recording_server
    config = S3ClientConfig(max_attempts=1, requester_pays=True)
    client = S3Client("us-east-1", endpoint=endpoint, user_agent=UserAgent(["e2e-test"]), s3client_config=config)
    with pytest.raises(S3Exception):
        client.head_object("bucket", "dir/a key")
    assert len(seen) == 1
    method, path, headers = seen[0]
    assert (method, path) == ("HEAD", "/bucket/dir/a%20key")  # path style under an IP address
    assert client.user_agent_prefix in headers.get("User-Agent", "")
    assert "(e2e-test)" in headers["User-Agent"]
    assert headers.get("x-amz-request-payer") == "requester"
    assert headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 ")


def test_unsigned_requests_carry_no_signature(recording_server):
    endpoint, seen = recording_server
    client = S3Client("us-east-1", endpoint=endpoint, s3client_config=S3ClientConfig(max_attempts=1, unsigned=True))
    with pytest.raises(S3Exception):
        client.head_object("bucket", "key")
    assert len(seen) == 1
    assert "Authorization" not in seen[0][2]
    assert "x-amz-request-payer" not in seen[0][2]
