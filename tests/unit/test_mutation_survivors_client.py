"""Tests written for mutants of S3Client (_s3client/_s3client.py) that survived tests/mutation/run.py:
each pins a behaviour no other test checked (the mutant it kills is named in the test's docstring).
No server: the native client is built (which sends nothing) or stood in for at its constructor."""

import logging
import pickle

import pytest
from forked_child import in_forked_child

from s3torchconnector import S3Exception
from s3torchconnector._s3client import MockS3Client, S3Client, S3ClientConfig, _s3client

REGION = "us-east-1"
BUCKET = "bucket"


@pytest.fixture
def built(monkeypatch):
    """The arguments each native client is built with (the built client is a stand-in)."""
    calls = []

    def native_client(*args, **kwargs):
        calls.append((args, kwargs))
        return object()

    monkeypatch.setattr(_s3client._native, "NativeClient", native_client)
    return calls


def test_every_setting_of_the_config_reaches_the_native_client(built, monkeypatch):
    """S3Client._client_builder: each S3ClientConfig field is passed on, under its own name."""
    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    config = S3ClientConfig(
        throughput_target_gbps=2.5,
        part_size=16 * 1024 * 1024,
        unsigned=True,
        force_path_style=True,
        max_attempts=3,
        profile="other",
        upload_checksum="CRC32",
        validate_checksums=True,
        stall_timeout_seconds=7,
        min_throughput_bytes_per_second=1000,
        memory_limit_bytes=512 * 1024 * 1024,
        network_interface_names=("lo",),
    )
    _ = S3Client("eu-west-2", endpoint="http://127.0.0.1:9", s3client_config=config)._client  # built now
    ((args, kwargs),) = built
    assert args == () and kwargs.pop("region") == "eu-west-2"
    prefix = kwargs.pop("user_agent")
    assert prefix.startswith("s3torchconnector/")
    assert kwargs == dict(
        endpoint="http://127.0.0.1:9",
        throughput_target_gbps=2.5,
        part_size=16 * 1024 * 1024,
        unsigned_requests=True,
        force_path_style=True,
        max_attempts=3,
        profile="other",
        requester_pays=False,
        upload_checksum="CRC32",
        validate_checksums=True,
        stall_timeout_seconds=7,
        min_throughput_bytes_per_second=1000,
        memory_limit_bytes=512 * 1024 * 1024,
        network_interface_names=["lo"],
    )
    assert type(kwargs["throughput_target_gbps"]) is float and type(kwargs["validate_checksums"]) is bool


def test_the_defaults_reach_the_native_client_as_it_takes_them(built, monkeypatch):
    """S3Client._client_builder and _resolve_endpoint: no endpoint (and none in the environment) is
    "" (the region's own), no profile is "", no upload checksum is "", and validate_checksums
    None is False; AWS_ENDPOINT_URL_S3 is taken when no endpoint is given."""
    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    _ = S3Client(REGION, s3client_config=S3ClientConfig(upload_checksum=None, requester_pays=True))._client
    kwargs = built[-1][1]
    assert (kwargs["endpoint"], kwargs["profile"], kwargs["upload_checksum"]) == ("", "", "")
    assert kwargs["validate_checksums"] is False and kwargs["requester_pays"] is True
    assert kwargs["throughput_target_gbps"] == 10.0 and type(kwargs["throughput_target_gbps"]) is float

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:8")
    _ = S3Client(REGION)._client
    assert built[-1][1]["endpoint"] == "http://127.0.0.1:8" and built[-1][1]["upload_checksum"] == "CRC32C"


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


def test_a_tar_shard_of_a_manifest_is_read_at_its_recorded_version(monkeypatch):
    """S3Client._stream_object gets the ETag the manifest recorded: a shard replaced since the
    manifest was written fails (412 PreconditionFailed) instead of mixing another version in."""
    import io
    import tarfile

    from s3torchconnector import S3IterableDataset, manifest

    def tar(text: bytes) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            member = tarfile.TarInfo("s/0.txt")
            member.size = len(text)
            archive.addfile(member, io.BytesIO(text))
        return buffer.getvalue()

    client = MockS3Client(REGION, BUCKET)
    client.add_object("shards/0.tar", tar(b"old"))
    monkeypatch.setattr(manifest, "S3Client", lambda *args, **kwargs: client)  # write_manifest's own client
    manifest.write_manifest(f"s3://{BUCKET}/shards/", f"s3://{BUCKET}/m.jsonl", region=REGION)

    def samples():
        made = S3IterableDataset.from_manifest(
            f"s3://{BUCKET}/m.jsonl", region=REGION, shard_format="tar", transform=lambda sample: sample["txt"]
        )
        made._client = client
        return list(made)

    assert samples() == [b"old"]
    client.add_object("shards/0.tar", tar(b"new"))
    with pytest.raises(S3Exception, match="PreconditionFailed"):
        samples()


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


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"region": ""}, ValueError, "region must be a non-empty string such as 'us-east-1', got ''"),
        ({"region": 3}, ValueError, "region must be a non-empty string such as 'us-east-1', got 3"),
        ({"endpoint": 8080}, TypeError, "endpoint must be a string URL, got int"),
        ({"s3client_config": {"part_size": 1}}, TypeError, "s3client_config must be an S3ClientConfig, got dict"),
    ],
)
def test_a_client_refuses_bad_arguments_with_what_is_expected(arguments, error, message):
    """S3Client.__init__: each refusal, and its whole message."""
    with pytest.raises(error) as refused:
        S3Client(**{"region": REGION, **arguments})
    assert str(refused.value) == message


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


def test_an_object_of_a_manifest_is_read_at_its_recorded_version(monkeypatch):
    """S3Client._get_object_version pins the reader's requests to the manifest's ETag: an object
    replaced since the manifest was written fails (412 PreconditionFailed), not read as it is now."""
    from s3torchconnector import S3MapDataset, manifest

    client = MockS3Client(REGION, BUCKET)
    client.add_object("data/0", b"old")
    monkeypatch.setattr(manifest, "S3Client", lambda *args, **kwargs: client)  # write_manifest's own client
    manifest.write_manifest(f"s3://{BUCKET}/data/", f"s3://{BUCKET}/m.jsonl", region=REGION)
    dataset = S3MapDataset.from_manifest(f"s3://{BUCKET}/m.jsonl", region=REGION, transform=lambda r: r.read())
    dataset._client = client
    assert dataset[0] == b"old"
    client.add_object("data/0", b"new")
    with pytest.raises(S3Exception, match="PreconditionFailed"):
        dataset[0]
