"""S3Client's own Python layer, without a server (on the in-memory MockS3Client, or the native client
built, which sends nothing): its argument checks and their messages, its debug lines, which GETs
ask for a whole object and which stream it, a listing rebuilt from its saved state, and a client
across pickling and forks. Each test's docstring names the code it pins."""

import logging
import pickle

import pytest
from forked_child import in_forked_child
from mock_clients import mock_client_with_objects

from s3torchconnector._s3client import MockS3Client, S3Client
from s3torchconnector._s3client.list_object_stream import ListObjectStream

REGION = "us-east-1"
BUCKET = "bucket"


@pytest.fixture
def client() -> MockS3Client:
    return mock_client_with_objects(REGION, BUCKET)


# ---------------------------------------------------------------- processes


def test_a_pickled_client_builds_its_own_native_client():
    """S3Client pickles without its native client; the copy builds its own on first use, also in
    the same process."""
    client = S3Client(REGION, endpoint="http://127.0.0.1:9")
    native = client._client
    copy = pickle.loads(pickle.dumps(client))
    assert copy._native.built() is None
    rebuilt = copy._client
    assert rebuilt is not None and rebuilt is not native
    assert copy.metrics() == {"operations": {}, "peak_connections": 0}


def test_a_forked_child_counts_only_its_own_requests():
    """S3Client.metrics: each process counts its own requests; a forked child that has not sent any
    reports none, not its parent's (merge_metrics would count them twice)."""
    client = MockS3Client(REGION, BUCKET)
    client.add_object("k", b"abc")
    assert client.get_object(BUCKET, "k").read() == b"abc"
    assert client.metrics()["operations"]
    assert in_forked_child(client.metrics) == repr({"operations": {}, "peak_connections": 0})


# ---------------------------------------------------------------- PUT


@pytest.mark.parametrize("storage_class", ["", 3])
def test_a_storage_class_that_is_no_name_is_refused(storage_class):
    """S3Client.put_object: an empty or non-string storage class is refused with what is expected."""
    client = MockS3Client(REGION, BUCKET)
    with pytest.raises(ValueError) as refused:
        client.put_object(BUCKET, "k", storage_class=storage_class)
    assert str(refused.value) == (f"storage_class must be a non-empty string such as 'STANDARD', got {storage_class!r}")


def test_a_put_is_logged_with_its_object(caplog):
    """S3Client.put_object: a debug line names the operation and the object."""
    client = MockS3Client(REGION, BUCKET)
    with caplog.at_level(logging.DEBUG, logger="s3torchconnector"):
        client.put_object(BUCKET, "dir/k").close()
    assert f"PutObject s3://{BUCKET}/dir/k" in [record.getMessage() for record in caplog.records]


# ---------------------------------------------------------------- LIST


@pytest.mark.parametrize("arguments", [{"prefix": 1}, {"delimiter": b"/"}])
def test_a_listing_refuses_a_prefix_or_delimiter_that_is_not_a_string(arguments):
    """S3Client.list_objects: either one not a string is refused, with what is expected."""
    with pytest.raises(TypeError) as refused:
        MockS3Client(REGION, BUCKET).list_objects(BUCKET, **arguments)
    assert str(refused.value) == "prefix and delimiter must be strings"


@pytest.mark.parametrize("max_keys", [0, 1001, True, 2.0])
def test_a_listing_refuses_a_page_size_s3_does_not_take(max_keys):
    """S3Client.list_objects: max_keys is an int from 1 to 1000 (S3's most), not a bool."""
    with pytest.raises(ValueError) as refused:
        MockS3Client(REGION, BUCKET).list_objects(BUCKET, max_keys=max_keys)
    assert str(refused.value) == f"max_keys must be an integer from 1 to 1000, got {max_keys!r}"
    assert [page.object_info for page in MockS3Client(REGION, BUCKET).list_objects(BUCKET, max_keys=1000)] == [[]]


def test_a_listing_without_a_delimiter_is_flat_and_logged(caplog):
    """S3Client.list_objects: by default no delimiter, so every key under the prefix is listed
    whatever it holds, and no common prefixes; a debug line names the bucket and prefix."""
    client = MockS3Client(REGION, BUCKET)
    keys = ["d/a/b", "d/aXXXXb", "d/c"]
    for key in keys:
        client.add_object(key, b"")
    with caplog.at_level(logging.DEBUG, logger="s3torchconnector"):
        pages = list(client.list_objects(BUCKET, "d/"))
    assert [info.key for page in pages for info in page.object_info] == keys
    assert [prefix for page in pages for prefix in page.common_prefixes] == []
    assert f"ListObjectsV2 s3://{BUCKET}/d/" in [record.getMessage() for record in caplog.records]


def test_a_listing_rebuilt_from_its_state_goes_on_from_the_same_page(client):
    """ListObjectStream._from_state (how the original unpickles a listing): every argument reaches the
    new stream, which lists from the page its continuation token names."""
    stream = client.list_objects(BUCKET, "", "", 2)
    first = next(stream)
    assert [info.key for info in first.object_info] == ["k0", "k1"]
    assert stream.continuation_token and not stream.complete

    rebuilt = ListObjectStream._from_state(client, BUCKET, "", "", 2, stream.continuation_token, False)
    assert (rebuilt.bucket, rebuilt.prefix, rebuilt.delimiter, rebuilt.max_keys) == (BUCKET, "", "", 2)
    assert rebuilt.continuation_token == stream.continuation_token and rebuilt.complete is False
    rest = [[info.key for info in page.object_info] for page in rebuilt]
    assert rest == [["k2", "k3"], ["k4"]]

    finished = ListObjectStream._from_state(client, BUCKET, "k", "/", 7, None, True)
    assert (finished.prefix, finished.delimiter, finished.max_keys) == ("k", "/", 7)
    assert list(finished) == []


# ---------------------------------------------------------------- GET


@pytest.mark.parametrize(
    "start, end, message",
    [
        (-1, None, "a byte range cannot be negative, got start=-1 end=None"),
        (None, -1, "a byte range cannot be negative, got start=None end=-1"),
        (5, 2, "range end 2 is before its start 5"),
    ],
)
def test_a_byte_range_that_is_no_range_is_refused(start, end, message):
    """S3Client._get_object_stream (the original's, which plugins patch): a negative bound, or an end
    before the start, is refused with the range; an empty range [0, 0) is a range, and reads nothing."""
    client = MockS3Client(REGION, BUCKET)
    client.add_object("k", b"abc")
    with pytest.raises(ValueError) as refused:
        client._get_object_stream(BUCKET, "k", start, end)
    assert str(refused.value) == message
    assert client._get_object_stream(BUCKET, "k", 0, 0).read_all_bytes() == b""
    assert client._get_object_stream(BUCKET, "k", 1, None).read_all_bytes() == b"bc"


def test_a_whole_read_is_one_buffer_and_a_stream_comes_in_parts():
    """S3Client._get_object_stream and _stream_object: the sequential reader asks for the whole object
    as one buffer; ranged reads and a tar shard's stream (read in order, memory bounded) do not."""
    from s3torchconnector import S3ReaderConstructor

    client = MockS3Client(REGION, BUCKET)
    client.add_object("k", b"0123456789")
    asked = []
    get_object = client._mock_client.get_object

    def recording(bucket, key, start, end, whole, version):
        asked.append((start, end, whole))
        return get_object(bucket, key, start, end, whole, version)

    client._mock_client.get_object = recording
    _ = client._client  # built: the in-memory bucket
    assert client.get_object(BUCKET, "k").read() == b"0123456789"
    reader = client.get_object(BUCKET, "k", reader_constructor=S3ReaderConstructor.range_based(0))
    reader.seek(2)
    assert reader.read(3) == b"234"
    assert b"".join(client._stream_object(BUCKET, "k", "")) == b"0123456789"
    assert asked == [(None, None, True), (2, 5, False), (0, None, False)]


def test_reads_are_logged_with_their_object(caplog):
    """S3Client._get_object_version: a debug line names the operation and the object."""
    client = MockS3Client(REGION, BUCKET)
    with caplog.at_level(logging.DEBUG, logger="s3torchconnector"):
        client.get_object(BUCKET, "dir/k")
    assert f"GetObject s3://{BUCKET}/dir/k" in [record.getMessage() for record in caplog.records]


def test_a_reader_given_the_objects_info_sends_no_head():
    """S3Client.get_object passes object_info on: the reader's size comes from it, with no HeadObject."""
    from s3torchconnector._s3client import HeadObjectResult

    client = MockS3Client(REGION, BUCKET)
    client.add_object("k", b"0123456789")
    reader = client.get_object(BUCKET, "k", object_info=HeadObjectResult('"e"', 10))
    assert reader.seek(0, 2) == 10 and reader.get_object_info().size == 10
    assert "HeadObject" not in client.metrics()["operations"]
    client.get_object(BUCKET, "k").seek(0, 2)
    assert "HeadObject" in client.metrics()["operations"]
