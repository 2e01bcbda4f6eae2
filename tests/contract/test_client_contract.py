"""The client contract: what S3Client and the interface under it (NativeClient, or the in-memory fake standing in
for it) do, asserted once and run on both (conftest.py). Every value here is what the native client does against
moto; the fake must do the same.

tests/unit/test_mock_s3client.py tests the fake alone (its own additions, pickling, datasets on it); this suite
holds both to one behaviour: results, ObjectInfo/HeadObjectResult attributes, errors (type, code, status,
operation, bucket, key, message), listings, metrics and the native interface's argument checks.
"""

import array
import email.utils
import hashlib
import pickle
import re
import time

import numpy
import pytest

from s3torchconnector import (
    NoSuchBucketError,
    NoSuchKeyError,
    ObjectChangedError,
    S3ClientConfig,
    S3Exception,
    S3ReaderConstructor,
)
from s3torchconnector._native import ObjectVersion

MIB = 1024 * 1024
DATA = b"0123456789"
EMPTY_MD5 = '"d41d8cd98f00b204e9800998ecf8427e"'


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def multipart_etag(data: bytes, part: int) -> str:
    digests = b"".join(hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part))
    return '"' + hashlib.md5(digests).hexdigest() + f'-{-(-len(data) // part)}"'


def keys(side, prefix: str = "") -> list:
    return [info.key for page in side.client.list_objects(side.bucket, prefix) for info in page.object_info]


def message(error: S3Exception) -> str:
    """The message without S3's request id (the fake has none)."""
    return re.sub(r", request id [^;)]*", "", str(error))


def expect(call, kind, code, status, operation, bucket, key, text=None) -> S3Exception:
    """What ``call`` raises: exactly ``kind``, with these attributes (and message)."""
    with pytest.raises(S3Exception) as raised:
        call()
    error = raised.value
    assert type(error) is kind
    assert (error.code, error.status, error.operation, error.bucket, error.key) == (
        code,
        status,
        operation,
        bucket,
        key,
    )
    assert isinstance(error.request_id, str)
    if text is not None:
        assert message(error) == text
    return error


def no_such_key(operation: str, bucket: str, key: str) -> str:
    if operation == "CopyObject":
        return f"NoSuchKey: copy source s3://{bucket}/{key} does not exist (Service error: The object was not found; HTTP 404)"
    found = "The object was not found" if operation == "HeadObject" else "The key does not exist"
    return f"NoSuchKey: s3://{bucket}/{key} does not exist (Service error: {found}; HTTP 404)"


def no_such_bucket(bucket: str, operation: str = "") -> str:
    # The original's copy says of a missing bucket what it says of a missing key.
    original = "The object was not found" if operation == "CopyObject" else "The bucket does not exist"
    return f"NoSuchBucket: bucket '{bucket}' does not exist (Service error: {original}; HTTP 404)"


def failed(code: str, operation: str, bucket: str, key: str, server_message: str, status: int) -> str:
    return f"{code}: {operation} of s3://{bucket}/{key} failed: {server_message} (HTTP {status})"


# ---------------------------------------------------------------- objects: write, read, overwrite


@pytest.mark.parametrize("size", [0, 1, 10, 100_000])
def test_what_is_written_is_read_back_with_its_md5_as_etag(side, size):
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    with side.client.put_object(side.bucket, "obj") as writer:
        for start in range(0, size, 7_000):
            writer.write(data[start : start + 7_000])
    assert side.client.get_object(side.bucket, "obj").read() == data
    head = side.client.head_object(side.bucket, "obj")
    assert (head.etag, head.size) == (md5_etag(data), size)


def test_an_empty_object(side):
    side.put("empty", b"")
    head = side.native.head_object(side.bucket, "empty")
    assert (head.key, head.etag, head.size, head.storage_class, head.restore) == ("empty", EMPTY_MD5, 0, "", "")
    stream = side.native.get_object(side.bucket, "empty")
    assert (stream.info().size, stream.read_all_bytes(), stream.next_chunk(), stream.readinto(bytearray(4))) == (
        0,
        b"",
        None,
        0,
    )
    assert list(side.native.get_object(side.bucket, "empty")) == []
    past_end = side.native.get_object(side.bucket, "empty", 0, 5)
    info = past_end.info()
    assert (info.key, info.etag, info.size, info.last_modified) == ("empty", "", 0, "")
    assert past_end.read_all_bytes() == b""
    (listed,) = side.native.list_objects(side.bucket).objects
    assert (listed.key, listed.size, listed.etag) == ("empty", 0, EMPTY_MD5)


def test_an_overwrite_replaces_the_object(side):
    side.put("k", b"old")
    side.put("k", b"new!")
    assert side.client.get_object(side.bucket, "k").read() == b"new!"
    head = side.client.head_object(side.bucket, "k")
    assert (head.etag, head.size) == (md5_etag(b"new!"), 4)
    assert keys(side) == ["k"]


def test_an_upload_becomes_an_object_when_closed_and_never_when_aborted(side):
    writer = side.native.put_object(side.bucket, "w")
    assert (writer.bucket, writer.key, writer.bytes_written) == (side.bucket, "w", 0)
    assert writer.write(b"ab") == 2
    assert writer.write(memoryview(b"xcdx")[1:3]) == 2
    assert writer.bytes_written == 4
    expect(
        lambda: side.native.head_object(side.bucket, "w"),
        NoSuchKeyError,
        "NoSuchKey",
        404,
        "HeadObject",
        side.bucket,
        "w",
    )
    writer.close()
    writer.close()  # a second close does nothing
    writer.abort()  # nor does an abort after the close
    with pytest.raises(RuntimeError):
        writer.write(b"more")
    assert side.native.get_object(side.bucket, "w").read_all_bytes() == b"abcd"

    aborted = side.native.put_object(side.bucket, "aborted")
    aborted.write(b"x")
    aborted.abort()
    aborted.close()  # after an abort: nothing to complete
    with pytest.raises(RuntimeError):
        aborted.write(b"more")
    assert keys(side) == ["w"]


def test_an_upload_takes_contiguous_buffers_only(side):
    writer = side.native.put_object(side.bucket, "w")
    with pytest.raises(TypeError):
        writer.write("text")
    with pytest.raises(TypeError):
        writer.write(5)
    with pytest.raises(BufferError):
        writer.write(memoryview(b"abcdef")[::2])
    assert writer.write(array.array("i", [1, 2])) == 8
    assert writer.bytes_written == 8
    writer.close()
    assert side.native.head_object(side.bucket, "w").size == 8


# ---------------------------------------------------------------- storage classes, archived objects


@pytest.mark.parametrize(
    "storage_class",
    [
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER_IR",
        "GLACIER",
        "DEEP_ARCHIVE",
    ],
)
def test_an_object_keeps_its_storage_class(side, storage_class):
    side.put("k", DATA, storage_class=storage_class)
    # HEAD (S3's header) names any class but STANDARD; listings name every class.
    assert side.native.head_object(side.bucket, "k").storage_class == (
        "" if storage_class == "STANDARD" else storage_class
    )
    assert side.client.head_object(side.bucket, "k").storage_class == (
        None if storage_class == "STANDARD" else storage_class
    )
    (listed,) = next(iter(side.client.list_objects(side.bucket))).object_info
    assert listed.storage_class == storage_class
    if storage_class not in ("GLACIER", "DEEP_ARCHIVE"):  # archived: the next test
        assert side.client.get_object(side.bucket, "k").read() == DATA


@pytest.mark.parametrize("storage_class", ["FAST", "standard", "OUTPOSTS", "SNOW"])
def test_an_upload_in_an_unknown_storage_class_fails_on_close(side, storage_class):
    writer = side.client.put_object(side.bucket, "k", storage_class=storage_class)
    writer.write(DATA)
    text = failed(
        "InvalidStorageClass", "PutObject", side.bucket, "k", "The storage class you specified is not valid", 400
    )
    expect(writer.close, S3Exception, "InvalidStorageClass", 400, "PutObject", side.bucket, "k", text)
    assert keys(side) == []


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_an_archived_object_can_be_listed_and_headed_but_not_read_or_copied(side, storage_class):
    side.put("cold", DATA, storage_class=storage_class)
    head = side.client.head_object(side.bucket, "cold")
    assert (head.size, head.storage_class, head.restore_status) == (10, storage_class, None)
    text = failed(
        "InvalidObjectState",
        "GetObject",
        side.bucket,
        "cold",
        "The operation is not valid for the object's storage class",
        403,
    )
    args = (S3Exception, "InvalidObjectState", 403, "GetObject", side.bucket, "cold", text)
    expect(lambda: side.native.get_object(side.bucket, "cold").read_all_bytes(), *args)
    expect(lambda: side.native.get_object(side.bucket, "cold", 2, 4).read_all_bytes(), *args)
    expect(lambda: side.client.get_object(side.bucket, "cold").read(), *args)
    text = failed(
        "ObjectNotInActiveTierError",
        "CopyObject",
        side.bucket,
        "warm",
        "The source object of the COPY operation is not in the active tier and is only stored in Amazon Glacier.",
        403,
    )
    copy = lambda: side.client.copy_object(side.bucket, "cold", side.bucket, "warm")
    expect(copy, S3Exception, "ObjectNotInActiveTierError", 403, "CopyObject", side.bucket, "warm", text)
    assert keys(side) == ["cold"]


# ---------------------------------------------------------------- multipart uploads


def test_an_upload_larger_than_a_part_has_the_multipart_etag(side):
    # part_size under S3's 5 MiB minimum: downloads use it, uploads go up in 5 MiB parts.
    client = side.new_client(S3ClientConfig(part_size=1 * MIB))
    data = bytes(range(256)) * (5 * MIB // 256) + b"!"
    side.put("one-part", data[: 5 * MIB], client=client)
    with client.put_object(side.bucket, "two-parts") as writer:
        for start in range(0, len(data), 100_000):
            writer.write(data[start : start + 100_000])
    one, two = md5_etag(data[: 5 * MIB]), multipart_etag(data, 5 * MIB)
    assert two.endswith('-2"')
    assert [client.head_object(side.bucket, key).etag for key in ("one-part", "two-parts")] == [one, two]
    listed = {info.key: info.etag for page in client.list_objects(side.bucket) for info in page.object_info}
    assert listed == {"one-part": one, "two-parts": two}
    assert client.get_object(side.bucket, "two-parts").read() == data
    # A copy (one CopyObject request under 1 GiB) is a new, single-part object: the MD5 of its bytes.
    client.copy_object(side.bucket, "two-parts", side.bucket, "copy")
    assert client.head_object(side.bucket, "copy").etag == md5_etag(data)


def test_a_multipart_upload_to_a_missing_bucket_fails(side):
    client = side.new_client(S3ClientConfig(part_size=5 * MIB))

    def upload():
        with client.put_object(side.missing_bucket, "k") as writer:
            writer.write(b"x" * (6 * MIB))

    text = no_such_bucket(side.missing_bucket)
    expect(upload, NoSuchBucketError, "NoSuchBucket", 404, "PutObject", side.missing_bucket, "k", text)


# ---------------------------------------------------------------- reads: ranges and streams


@pytest.mark.parametrize(
    "start, end",
    [(None, None), (0, 10), (2, 4), (None, 3), (7, None), (9, 100), (3, 3), (10, None), (10, 20), (12, 15), (20, 20)],
)
def test_a_range_reads_bytes_start_to_end(side, start, end):
    side.put("k", DATA)
    stream = side.client._get_object_stream(side.bucket, "k", start, end)
    assert stream.tell() == (start or 0)
    info = stream.info()
    fields = (info.key, info.etag, info.size, info.storage_class, info.restore)
    if (start or 0) >= len(DATA) or end == (start or 0):
        # Nothing to read (past the end: S3's 416; empty: no request): an empty answer, not an error.
        assert fields + (info.last_modified,) == ("k", "", 0, "", "", "")
    else:
        assert fields == ("k", md5_etag(DATA), 10, "", "")  # the whole object's size
        assert email.utils.parsedate_tz(info.last_modified) is not None
    assert stream.read_all_bytes() == DATA[start:end]
    assert stream.tell() == (start or 0) + len(DATA[start:end])


def test_a_range_that_ends_before_it_starts_is_refused(side):
    side.put("k", DATA)
    with pytest.raises(ValueError):
        side.client._get_object_stream(side.bucket, "k", 5, 2)
    with pytest.raises(ValueError):
        side.native.get_object(side.bucket, "k", 5, 2)


def test_a_stream_reads_in_order_by_any_mix_of_calls(side):
    side.put("k", DATA)
    stream = side.native.get_object(side.bucket, "k")
    assert (stream.bucket, stream.key) == (side.bucket, "k")
    buf = bytearray(3)
    assert (stream.readinto(buf), bytes(buf), stream.tell()) == (3, b"012", 3)
    assert bytes(stream.next_chunk()) == b"3456789"
    assert stream.tell() == 10
    assert (stream.next_chunk(), stream.read_all_bytes(), stream.readinto(buf), list(stream)) == (None, b"", 0, [])
    assert list(side.native.get_object(side.bucket, "k")) == [DATA]
    landing = side.native.get_object(side.bucket, "k")
    assert landing.land_bytes() == DATA
    assert (landing.wait_landed(0, 10), landing.has_landed(0, 10)) == (None, True)


def test_a_stream_gives_its_parts_as_chunks(side):
    client = side.new_client(S3ClientConfig(part_size=1 * MIB))
    data = bytes(range(256)) * (5 * MIB // 2 // 256)
    side.put("k", data, client=client)

    def chunk_sizes(*args):
        return [len(chunk) for chunk in iter(client._client.get_object(side.bucket, "k", *args).next_chunk, None)]

    assert chunk_sizes() == [MIB, MIB, MIB // 2]
    assert chunk_sizes(100, 2 * MIB + 200) == [MIB, MIB, 100]  # parts from the range's start
    assert chunk_sizes(None, None, True) == [len(data)]  # a whole download: one buffer
    assert b"".join(client._client.get_object(side.bucket, "k")) == data


def test_a_closed_stream_keeps_its_position_and_refuses_reads(side):
    side.put("k", DATA)
    stream = side.native.get_object(side.bucket, "k")
    assert stream.read_all_bytes() == DATA
    stream.close()
    stream.close()
    assert stream.tell() == 10
    for read in (stream.read_all_bytes, stream.next_chunk, lambda: stream.readinto(bytearray(4))):
        with pytest.raises(RuntimeError, match="the stream is closed"):
            read()
    # Closed part-way: its unread bytes are gone, and a read must not make up the rest.
    partly = side.native.get_object(side.bucket, "k")
    assert partly.readinto(bytearray(3)) == 3
    partly.close()
    with pytest.raises(RuntimeError, match="the stream is closed"):
        partly.read_all_bytes()
    assert partly.tell() == 3
    ranged = side.native.get_object(side.bucket, "k", 2, 5)
    assert ranged.read_all_bytes() == b"234"
    ranged.close()
    assert ranged.tell() == 5


def test_readinto_takes_writable_contiguous_buffers_only(side):
    side.put("k", DATA)
    stream = side.native.get_object(side.bucket, "k")
    with pytest.raises(BufferError):
        stream.readinto(b"1234")
    with pytest.raises(TypeError):
        stream.readinto("1234")
    with pytest.raises(BufferError):
        stream.readinto(memoryview(bytearray(8))[::2])
    ints = array.array("i", [0, 0])
    assert (stream.readinto(ints), ints.tobytes()) == (8, b"01234567")
    assert stream.read_all_bytes() == b"89"


# ---------------------------------------------------------------- one version per reader


def test_a_reader_fails_if_its_object_is_overwritten_between_its_requests(side):
    side.put("k", DATA)
    reader = side.client.get_object(side.bucket, "k", reader_constructor=S3ReaderConstructor.range_based(buffer_size=0))
    assert reader.read(4) == b"0123"
    side.put("k", b"abcdefghij")
    text = f"PreconditionFailed: s3://{side.bucket}/k changed while it was being read (HTTP 412)"
    expect(lambda: reader.read(4), ObjectChangedError, "PreconditionFailed", 412, "GetObject", side.bucket, "k", text)
    assert side.client.get_object(side.bucket, "k").read() == b"abcdefghij"


@pytest.mark.parametrize("pin", ["quoted", "unquoted", "other"])
@pytest.mark.parametrize("start, end", [(0, 4), (20, 30)])
def test_a_version_pins_reads_to_its_etag(side, pin, start, end):
    side.put("k", DATA)
    etag = {"quoted": md5_etag(DATA), "unquoted": md5_etag(DATA).strip('"'), "other": '"0"'}[pin]
    stream = side.native.get_object(side.bucket, "k", start, end, False, ObjectVersion(etag))
    if pin == "other":  # If-Match is answered before the range: 412 even past the end
        text = f"PreconditionFailed: s3://{side.bucket}/k changed while it was being read (HTTP 412)"
        expect(
            stream.read_all_bytes, ObjectChangedError, "PreconditionFailed", 412, "GetObject", side.bucket, "k", text
        )
    else:
        assert stream.read_all_bytes() == DATA[start:end]


def test_a_pinned_read_of_a_missing_key_is_no_such_key(side):
    stream = side.native.get_object(side.bucket, "nope", None, None, False, ObjectVersion('"0"'))
    text = no_such_key("GetObject", side.bucket, "nope")
    expect(stream.read_all_bytes, NoSuchKeyError, "NoSuchKey", 404, "GetObject", side.bucket, "nope", text)


# ---------------------------------------------------------------- missing keys and buckets


def test_a_missing_key(side):
    bucket = side.bucket
    get = (NoSuchKeyError, "NoSuchKey", 404, "GetObject", bucket, "nope", no_such_key("GetObject", bucket, "nope"))
    stream = side.native.get_object(bucket, "nope")
    assert stream.readinto(bytearray(0)) == 0  # nothing asked, nothing raised
    reads = [
        stream.info,
        stream.read_all_bytes,
        stream.next_chunk,
        lambda: stream.readinto(bytearray(4)),
        lambda: list(stream),
    ]
    errors = [expect(read, *get) for read in reads]
    assert len({id(error) for error in errors}) == len(errors)  # each read raises an exception of its own
    assert stream.tell() == 0
    expect(lambda: side.native.get_object(bucket, "nope", 2, 6).read_all_bytes(), *get)
    assert side.native.get_object(bucket, "nope", 4, 4).read_all_bytes() == b""  # an empty range asks nothing
    error = expect(
        lambda: side.client.get_object(bucket, "nope").read(),
        NoSuchKeyError,
        "NoSuchKey",
        404,
        "GetObject",
        bucket,
        "nope",
    )
    assert isinstance(error, FileNotFoundError)
    head = no_such_key("HeadObject", bucket, "nope")
    expect(
        lambda: side.client.head_object(bucket, "nope"),
        NoSuchKeyError,
        "NoSuchKey",
        404,
        "HeadObject",
        bucket,
        "nope",
        head,
    )
    copy = no_such_key("CopyObject", bucket, "nope")
    expect(
        lambda: side.client.copy_object(bucket, "nope", bucket, "dst"),
        NoSuchKeyError,
        "NoSuchKey",
        404,
        "CopyObject",
        bucket,
        "nope",
        copy,
    )
    side.client.delete_object(bucket, "nope")  # deleting a missing key succeeds, as on S3
    assert keys(side) == []


def test_a_missing_bucket(side):
    missing = side.missing_bucket
    text = no_such_bucket(missing)
    get = (NoSuchBucketError, "NoSuchBucket", 404, "GetObject", missing, "k", text)
    expect(lambda: side.native.get_object(missing, "k").read_all_bytes(), *get)
    expect(lambda: side.native.get_object(missing, "k", 2, 6).read_all_bytes(), *get)
    # A HEAD's error has no body: a 404 of a missing bucket cannot be told from a missing key's.
    head = no_such_key("HeadObject", missing, "k")
    expect(
        lambda: side.client.head_object(missing, "k"),
        NoSuchKeyError,
        "NoSuchKey",
        404,
        "HeadObject",
        missing,
        "k",
        head,
    )
    expect(
        lambda: side.client.delete_object(missing, "k"),
        NoSuchBucketError,
        "NoSuchBucket",
        404,
        "DeleteObject",
        missing,
        "k",
        text,
    )
    expect(
        lambda: side.put("k", DATA, bucket=missing),
        NoSuchBucketError,
        "NoSuchBucket",
        404,
        "PutObject",
        missing,
        "k",
        text,
    )
    expect(
        lambda: list(side.client.list_objects(missing)),
        NoSuchBucketError,
        "NoSuchBucket",
        404,
        "ListObjectsV2",
        missing,
        "",
        text,
    )


COPIES = {
    # (source bucket, source key, destination bucket, destination key), and what fails: the CRT HEADs the source
    # first (a 404 without a body: NoSuchKey, the source's), then sends the copy to the destination.
    "source bucket missing": (("missing", "k", "bucket", "dst"), ("NoSuchKey", "missing", "k")),
    "source key missing, destination bucket missing": (
        ("bucket", "nope", "missing", "dst"),
        ("NoSuchKey", "bucket", "nope"),
    ),
    "both buckets missing": (("missing", "k", "missing2", "dst"), ("NoSuchKey", "missing", "k")),
    "destination bucket missing": (("bucket", "k", "missing", "dst"), ("NoSuchBucket", "missing", "dst")),
    "onto itself": (("bucket", "k", "bucket", "k"), ("InvalidRequest", "bucket", "k")),
}


@pytest.mark.parametrize("case", sorted(COPIES))
def test_a_copy_that_fails(side, case):
    side.put("k", DATA)
    names = {"bucket": side.bucket, "missing": side.missing_bucket, "missing2": side.missing_bucket + "-2"}
    (src_bucket, src_key, dst_bucket, dst_key), (code, bucket, key) = COPIES[case]
    call = lambda: side.client.copy_object(names[src_bucket], src_key, names[dst_bucket], dst_key)
    bucket = names[bucket]
    if code == "NoSuchKey":
        expect(call, NoSuchKeyError, code, 404, "CopyObject", bucket, key, no_such_key("CopyObject", bucket, key))
    elif code == "NoSuchBucket":
        expect(call, NoSuchBucketError, code, 404, "CopyObject", bucket, key, no_such_bucket(bucket, "CopyObject"))
    else:
        illegal = (
            "This copy request is illegal because it is trying to copy an object to itself without changing the "
            "object's metadata, storage class, website redirect location or encryption attributes."
        )
        expect(
            call,
            S3Exception,
            code,
            400,
            "CopyObject",
            bucket,
            key,
            failed(code, "CopyObject", bucket, key, illegal, 400),
        )
    assert keys(side) == ["k"]
    assert side.client.get_object(side.bucket, "k").read() == DATA


# ---------------------------------------------------------------- copy and delete


def test_a_copy_is_a_new_standard_object_with_the_same_bytes(side):
    side.put("src", DATA, storage_class="STANDARD_IA")
    side.put("dst", b"old")
    source = side.client.head_object(side.bucket, "src")
    side.client.copy_object(side.bucket, "src", side.bucket, "dst")
    copy = side.client.head_object(side.bucket, "dst")
    assert (copy.etag, copy.size, copy.storage_class) == (md5_etag(DATA), 10, None)  # STANDARD: not named by HEAD
    assert copy.last_modified >= source.last_modified
    assert side.client.get_object(side.bucket, "dst").read() == DATA
    listed = {
        info.key: info.storage_class for page in side.client.list_objects(side.bucket) for info in page.object_info
    }
    assert listed == {"dst": "STANDARD", "src": "STANDARD_IA"}  # the source is unchanged


def test_a_delete_removes_the_object(side):
    side.put("k", DATA)
    side.put("other", DATA)
    side.client.delete_object(side.bucket, "k")
    assert keys(side) == ["other"]
    expect(
        lambda: side.client.head_object(side.bucket, "k"),
        NoSuchKeyError,
        "NoSuchKey",
        404,
        "HeadObject",
        side.bucket,
        "k",
    )


SPECIAL_KEYS = [
    "a b",
    "a+b",
    "a%20b",
    "ü/é",
    "q?x#y",
    "../x",
    "star*",
    "emoji😀",
    "a//b",
    "/lead",
    "semi;colon,comma",
    "brackets[]()",
    "single'quote",
]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_any_key_round_trips(side, key):
    side.put(key, key.encode())
    assert side.client.get_object(side.bucket, key).read() == key.encode()
    assert side.client.head_object(side.bucket, key).size == len(key.encode())
    assert keys(side, key) == [key]
    side.client.copy_object(side.bucket, key, side.bucket, key + " copy")
    side.client.delete_object(side.bucket, key)
    assert keys(side) == [key + " copy"]


# ---------------------------------------------------------------- listings


LISTED = [
    "b", "a/2", "a/1", "a/sub/x", "a/sub/y", "a+b", "a0", "é", "a/sub2/z", "c/d/e", "a b", "a%20b", "a/",
    "a//x", "/lead", "z😀", "z\uffff", "Z", "~", "-", "p/1", "p/2", "p/3", "q",
]  # fmt: skip


@pytest.fixture(scope="module")
def listed(module_side):
    for key in LISTED:
        module_side.put(key, key.encode())
    return module_side


def expected_entries(prefix: str, delimiter: str) -> list:
    """ListObjectsV2 by its definition: keys under the prefix in UTF-8 byte order (which is code point order),
    those with the delimiter after the prefix rolled up into one common prefix each, at its first key's place."""
    entries = []
    for key in sorted(LISTED):
        if key.startswith(prefix):
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            entry = ("prefix", key[: cut + len(delimiter)]) if cut >= 0 else ("object", key)
            if entry not in entries:
                entries.append(entry)
    return entries


@pytest.mark.parametrize("max_keys", [1, 3, 1000])
@pytest.mark.parametrize(
    "prefix, delimiter",
    [
        ("", ""),
        ("", "/"),
        ("a/", "/"),
        ("a", ""),
        ("a/sub", "/"),
        ("", "sub"),
        ("a/", "//"),
        ("", "a"),
        ("é", ""),
        ("none", ""),
    ],
)
def test_a_listing_pages_entries_in_key_order(listed, prefix, delimiter, max_keys):
    expected = expected_entries(prefix, delimiter)
    pages, token = [], ""
    while True:
        page = listed.native.list_objects(listed.bucket, prefix, delimiter, max_keys, token)
        pages.append(page)
        token = page.next_continuation_token
        if not token or len(pages) > len(LISTED):
            break
    entries = [
        sorted(
            [("object", info.key) for info in page.objects] + [("prefix", p) for p in page.common_prefixes],
            key=lambda e: e[1],
        )
        for page in pages
    ]
    assert [entry for page in entries for entry in page] == expected
    # Full pages (objects and common prefixes count alike) until the last, which alone has no token.
    assert [len(page) for page in entries] == [max_keys] * (len(pages) - 1) + [
        len(expected) - max_keys * (len(pages) - 1)
    ]
    assert 0 < len(entries[-1]) or expected == []
    assert [bool(page.next_continuation_token) for page in pages] == [True] * (len(pages) - 1) + [False]


@pytest.mark.parametrize("start_after", ["a/1", "a/", "a", "é", "b", "zzz", ""])
def test_a_listing_after_a_key_starts_past_it(listed, start_after):
    """start-after (a parallel listing's ranges): the keys after it, in key order, whether it names a key or
    falls between keys; a continuation token overrides it."""
    expected = [key for _, key in expected_entries("", "") if key > start_after]
    listed_after, token = [], ""
    for _ in range(len(LISTED) + 1):
        page = listed.native.list_objects(listed.bucket, "", "", 2, token, start_after)
        listed_after += [info.key for info in page.objects]
        token = page.next_continuation_token
        if not token:
            break
    assert listed_after == expected


def test_a_listing_through_s3client_gives_the_same_pages(listed):
    pages = list(listed.client.list_objects(listed.bucket, "a/", "/", max_keys=2))
    assert [([info.key for info in page.object_info], page.common_prefixes) for page in pages] == [
        (["a/"], ["a//"]),
        (["a/1", "a/2"], []),
        ([], ["a/sub/", "a/sub2/"]),
    ]
    assert [info.size for page in pages for info in page.object_info] == [2, 3, 3]


def test_a_listing_of_an_empty_bucket_is_one_empty_page(side):
    page = side.native.list_objects(side.bucket)
    assert (page.objects, page.common_prefixes, page.next_continuation_token) == ([], [], "")
    assert [(p.object_info, p.common_prefixes) for p in side.client.list_objects(side.bucket, "x/", "/")] == [([], [])]


def test_a_listing_and_a_head_describe_an_object_alike(side):
    before = int(time.time())
    side.put("k", DATA)
    after = int(time.time())
    head = side.client.head_object(side.bucket, "k")
    (listed,) = next(iter(side.client.list_objects(side.bucket))).object_info
    assert (head.etag, head.size, head.storage_class, head.restore_status) == (md5_etag(DATA), 10, None, None)
    assert (listed.key, listed.etag, listed.size, listed.storage_class) == ("k", md5_etag(DATA), 10, "STANDARD")
    assert before <= head.last_modified == listed.last_modified <= after
    # As S3 sends them: RFC 1123 in a HEAD's header, ISO 8601 in a listing.
    native_head = side.native.head_object(side.bucket, "k")
    assert email.utils.parsedate_tz(native_head.last_modified) is not None
    (native_listed,) = side.native.list_objects(side.bucket).objects
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", native_listed.last_modified)
    assert (native_head.restore, native_listed.restore) == ("", "")


# ---------------------------------------------------------------- what the native interface's objects are


def test_results_are_read_only_records_not_values_or_sequences(side):
    side.put("k", DATA)
    info = side.native.head_object(side.bucket, "k")
    page = side.native.list_objects(side.bucket)
    records = {
        info: ("key", "etag", "size", "last_modified", "storage_class", "restore"),
        page.objects[0]: ("key", "etag", "size", "last_modified", "storage_class", "restore"),
        page: ("objects", "common_prefixes", "next_continuation_token"),
    }
    for record, names in records.items():
        for name in names:
            with pytest.raises(AttributeError):
                setattr(record, name, getattr(record, name))
        with pytest.raises(TypeError):
            record[0]
        with pytest.raises(TypeError):
            iter(record)
        with pytest.raises(TypeError):
            pickle.dumps(record)
    assert info != side.native.head_object(side.bucket, "k")  # compared by identity
    page.objects.clear()  # a copy: each read of the list is a new one
    assert [o.key for o in page.objects] == ["k"]
    stream = side.native.get_object(side.bucket, "k")
    writer = side.native.put_object(side.bucket, "w")
    for thing, name in [
        (stream, "bucket"),
        (stream, "key"),
        (writer, "bucket"),
        (writer, "key"),
        (writer, "bytes_written"),
    ]:
        with pytest.raises(AttributeError):
            setattr(thing, name, getattr(thing, name))
    stream.close()
    writer.abort()


REFUSED = {
    "bucket None": lambda n, b: n.head_object(None, "k"),
    "key int": lambda n, b: n.head_object(b, 1),
    "key list": lambda n, b: n.delete_object(b, ["k"]),
    "start negative": lambda n, b: n.get_object(b, "k", -1, None),
    "end negative": lambda n, b: n.get_object(b, "k", None, -1),
    "start float": lambda n, b: n.get_object(b, "k", 1.0, None),
    "end str": lambda n, b: n.get_object(b, "k", None, "5"),
    "version str": lambda n, b: n.get_object(b, "k", None, None, False, '"etag"'),
    "storage class None": lambda n, b: n.put_object(b, "k", None),
    "prefix int": lambda n, b: n.list_objects(b, 1),
    "max_keys str": lambda n, b: n.list_objects(b, "", "", "3"),
    "max_keys float": lambda n, b: n.list_objects(b, "", "", 3.0),
    "token None": lambda n, b: n.list_objects(b, "", "", 10, None),
    "copy destination key None": lambda n, b: n.copy_object(b, "k", b, None),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_native_interface_refuses_arguments_of_other_types_before_any_request(side, case):
    side.put("k", DATA)
    before = side.native.metrics()["operations"]
    with pytest.raises(TypeError):
        REFUSED[case](side.native, side.bucket)
    assert side.native.metrics()["operations"] == before
    assert keys(side) == ["k"]


def test_the_native_interface_takes_bytes_for_text_and_any_integer(side):
    side.put("k", DATA)
    native, bucket = side.native, side.bucket
    assert native.head_object(bucket.encode(), b"k").key == "k"
    assert native.head_object(bucket, bytearray(b"k")).size == 10
    assert [info.key for info in native.list_objects(bucket, b"k").objects] == ["k"]
    assert native.get_object(bucket, "k", numpy.int64(2), numpy.uint8(4)).read_all_bytes() == b"23"
    assert native.get_object(bucket, "k", True, None).read_all_bytes() == DATA[1:]
    writer = native.put_object(bucket, b"w", b"STANDARD_IA")
    writer.close()
    assert native.head_object(bucket, "w").storage_class == "STANDARD_IA"
    assert len(native.list_objects(bucket, "", "", numpy.int32(1)).objects) == 1


# ---------------------------------------------------------------- metrics


def _quietly(call):
    try:
        call()
    except S3Exception:
        pass


METRICS = {
    # The requests, failed requests and object bytes (None: not compared) each call adds, per operation.
    "head": (lambda s: s.client.head_object(s.bucket, "k"), {"HeadObject": (1, 0, 0)}),
    "head of a missing key": (lambda s: s.client.head_object(s.bucket, "nope"), {"HeadObject": (1, 1, 0)}),
    "get": (lambda s: s.native.get_object(s.bucket, "k").read_all_bytes(), {"GetObject": (1, 0, 10)}),
    "get of a range": (lambda s: s.native.get_object(s.bucket, "k", 2, 5).read_all_bytes(), {"GetObject": (1, 0, 3)}),
    "get past the end": (
        lambda s: s.native.get_object(s.bucket, "k", 20, 30).read_all_bytes(),
        {"GetObject": (1, 1, 0)},
    ),
    "get of an empty range": (lambda s: s.native.get_object(s.bucket, "k", 3, 3).read_all_bytes(), {}),
    "get of a missing key": (
        lambda s: s.native.get_object(s.bucket, "nope").read_all_bytes(),
        {"GetObject": (1, 1, 0)},
    ),
    "put": (lambda s: s.put("w", b"12345"), {"PutObject": (1, 0, 5)}),
    "put to a missing bucket": (lambda s: s.put("w", b"12345", bucket=s.missing_bucket), {"PutObject": (1, 1, 0)}),
    "put in an unknown class": (lambda s: s.put("w", b"12345", storage_class="FAST"), {"PutObject": (1, 1, 0)}),
    "delete": (lambda s: s.client.delete_object(s.bucket, "k"), {"DeleteObject": (1, 0, 0)}),
    "delete in a missing bucket": (
        lambda s: s.client.delete_object(s.missing_bucket, "k"),
        {"DeleteObject": (1, 1, 0)},
    ),
    "list": (lambda s: list(s.client.list_objects(s.bucket)), {"ListObjectsV2": (1, 0, None)}),
    "list of a missing bucket": (
        lambda s: list(s.client.list_objects(s.missing_bucket)),
        {"ListObjectsV2": (1, 1, None)},
    ),
    # A copy is the CRT's HEAD of the source, then the CopyObject request.
    "copy": (lambda s: s.client.copy_object(s.bucket, "k", s.bucket, "c"), {"CopyObject": (2, 0, 0)}),
    "copy of a missing key": (
        lambda s: s.client.copy_object(s.bucket, "nope", s.bucket, "c"),
        {"CopyObject": (1, 1, 0)},
    ),
    "copy to a missing bucket": (
        lambda s: s.client.copy_object(s.bucket, "k", s.missing_bucket, "c"),
        {"CopyObject": (2, 1, 0)},
    ),
    "copy onto itself": (lambda s: s.client.copy_object(s.bucket, "k", s.bucket, "k"), {"CopyObject": (2, 1, 0)}),
}


def _counts(side) -> dict:
    operations = side.client.metrics()["operations"]
    return {name: (c["requests"], c["failed"], c["bytes"]) for name, c in operations.items()}


@pytest.mark.parametrize("case", sorted(METRICS))
def test_metrics_count_requests_failures_and_bytes(side, case):
    side.put("k", DATA)
    call, expected = METRICS[case]
    before = _counts(side)
    _quietly(lambda: call(side))
    after = _counts(side)
    added = {}
    for name, (requests, failures, size) in after.items():
        was = before.get(name, (0, 0, 0))
        if (requests, failures, size) != was:
            added[name] = (requests - was[0], failures - was[1], size - was[2])
    for name, counts in expected.items():
        if counts[2] is None:
            assert name in added
            added[name] = added[name][:2] + (None,)
    assert added == expected
