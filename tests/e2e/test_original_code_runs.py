"""Code written for the original 1.5.0 runs unchanged against a real S3 API (moto over HTTP): the
error import path users catch with, the raw clients, the positional dataset constructors, a plugin's
patch of S3Client._get_object_stream with the original's signature, and the version it requires."""

import importlib.metadata
import logging
import pickle
from functools import partial

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from s3torchconnector import S3Checkpoint, S3IterableDataset, S3MapDataset, S3ReaderConstructor, __version__
from s3torchconnector._s3client import S3Client
from s3torchconnector._s3dataset_common import get_objects_from_uris
from s3torchconnector.s3reader import S3ReaderConstructorProtocol
from s3torchconnectorclient import LOG_TRACE
from s3torchconnectorclient._mountpoint_s3_client import (
    MockMountpointS3Client,
    MountpointS3Client,
    S3Exception,
)


def test_errors_are_caught_by_the_originals_import_path(s3):
    checkpoint = S3Checkpoint(region=s3.region, endpoint=s3.endpoint)
    with pytest.raises(S3Exception) as raised:
        checkpoint.reader(s3.uri("missing.ckpt")).read()
    assert raised.value.code == "NoSuchKey"
    # The original registered S3Exception with copyreg so that DataLoader workers can send it back.
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)


def test_version_satisfies_requirements_written_for_the_original():
    assert __version__ == importlib.metadata.version("s3torchconnector")
    assert Version(__version__) in SpecifierSet(">=1.5")
    assert Version(__version__) in SpecifierSet("~=1.5")


def test_trace_level_is_registered():
    assert LOG_TRACE == 5
    assert logging.getLevelName(LOG_TRACE) == "TRACE"


def test_raw_mountpoint_client_round_trip(s3):
    client = MountpointS3Client(s3.region, endpoint=s3.endpoint)
    stream = client.put_object(s3.bucket, "raw/a.bin")
    stream.write(b"hello ")
    stream.write(b"world")
    stream.close()
    assert s3.get("raw/a.bin") == b"hello world"

    whole = client.get_object(s3.bucket, "raw/a.bin")
    assert (whole.bucket, whole.key) == (s3.bucket, "raw/a.bin")
    assert b"".join(whole) == b"hello world"
    assert whole.tell() == 11
    ranged = client.get_object(s3.bucket, "raw/a.bin", 6, 11)
    assert ranged.tell() == 6
    assert b"".join(ranged) == b"world"
    assert ranged.tell() == 11

    assert client.head_object(s3.bucket, "raw/a.bin").size == 11
    pages = client.list_objects(s3.bucket, "raw/")
    assert [info.key for page in pages for info in page.object_info] == ["raw/a.bin"]
    assert pages.complete
    client.copy_object(s3.bucket, "raw/a.bin", s3.bucket, "raw/b.bin")
    client.delete_object(s3.bucket, "raw/a.bin")
    assert s3.keys("raw/") == ["raw/b.bin"]
    assert (client.region, client.max_attempts, client.part_size) == (s3.region, 10, 8 * 1024 * 1024)


def test_mock_mountpoint_client_as_the_originals_tests_use_it():
    mock = MockMountpointS3Client("us-east-1", "bucket")
    mock.add_object("a/one", b"1")
    mock.add_object("a/two", b"22")
    client = mock.create_mocked_client()
    assert b"".join(client.get_object("bucket", "a/two")) == b"22"
    assert [i.key for page in client.list_objects("bucket", "a/") for i in page.object_info] == ["a/one", "a/two"]
    mock.remove_object("a/one")
    with pytest.raises(S3Exception, match="NoSuchKey"):
        b"".join(client.get_object("bucket", "a/one"))


def read_key_and_bytes(reader):
    return reader.key, reader.read()


@pytest.mark.parametrize("kind", [S3MapDataset, S3IterableDataset])
def test_datasets_take_the_originals_positional_arguments(s3, kind):
    s3.put("p/0", b"zero")
    s3.put("p/1", b"one")
    uris = [s3.uri("p/0"), s3.uri("p/1")]

    dataset = kind(s3.region, partial(get_objects_from_uris, uris), s3.endpoint, read_key_and_bytes)
    samples = list(dataset) if kind is S3IterableDataset else [dataset[0], dataset[1]]
    assert samples == [("p/0", b"zero"), ("p/1", b"one")]
    assert (dataset.region, dataset.endpoint) == (s3.region, s3.endpoint)


def test_reader_constructors_are_runtime_checkable_protocols():
    for constructor in (
        S3ReaderConstructor.sequential(),
        S3ReaderConstructor.range_based(),
        S3ReaderConstructor.dcp_optimized(max_gap_size=float("inf")),
    ):
        assert isinstance(constructor, S3ReaderConstructorProtocol)


@pytest.mark.parametrize(
    "constructor", [S3ReaderConstructor.sequential(), S3ReaderConstructor.range_based(buffer_size=4)]
)
def test_a_plugin_patching_get_object_stream_keeps_working(s3, monkeypatch, constructor):
    """Plugins and test suites wrap S3Client._get_object_stream with the original's signature; our
    readers go through it, and still pin one object version across their requests."""
    s3.put("obj", b"0123456789" * 10)
    calls = []
    original = S3Client._get_object_stream

    def wrapped(self, bucket, key, start=None, end=None):
        calls.append((key, start, end))
        return original(self, bucket, key, start, end)

    monkeypatch.setattr(S3Client, "_get_object_stream", wrapped)
    client = S3Client(s3.region, endpoint=s3.endpoint)
    reader = client.get_object(s3.bucket, "obj", reader_constructor=constructor)
    assert reader.read(5) == b"01234"
    assert calls and all(call[0] == "obj" for call in calls)
    if constructor.func.__name__ == "RangedS3Reader":
        s3.put("obj", b"X" * 100)  # overwritten between two requests of the same reader
        with pytest.raises(S3Exception, match="PreconditionFailed|412"):
            reader.seek(50)
            reader.read(5)
