"""S3Writer and S3Checkpoint against the local S3 server."""

import io
import random
import sys
import types

import numpy as np
import pytest
import torch

from s3torchconnector import (
    NoSuchBucketError,
    S3Checkpoint,
    S3ClientConfig,
    S3Exception,
    S3ReaderConstructor,
    S3Writer,
)
from s3torchconnector._s3client import S3Client

MIB = 1024 * 1024
PART_CONFIG = S3ClientConfig(part_size=5 * MIB)


def client(s3, config=None) -> S3Client:
    return S3Client(s3.region, endpoint=s3.endpoint, s3client_config=config)


# --------------------------------------------------------------------------- S3Writer


def test_write_accepts_bytes_like_objects_and_returns_byte_counts(s3):
    array = np.arange(10, dtype=np.int32)
    matrix = np.arange(6, dtype=np.int16).reshape(2, 3)
    tensor = torch.arange(4, dtype=torch.float64)
    pieces = [
        b"bytes",
        bytearray(b"bytearray"),
        memoryview(b"memoryview"),
        memoryview(array),
        array,
        matrix,
        tensor.numpy(),
        b"",
    ]
    expected = b"".join(bytes(memoryview(p).cast("B")) for p in pieces)
    writer = client(s3).put_object(s3.bucket, "writer/mixed")
    assert isinstance(writer, S3Writer)
    total = 0
    for piece in pieces:
        n = writer.write(piece)
        assert n == memoryview(piece).nbytes, type(piece)
        total += n
        assert writer.tell() == total
    writer.flush()
    assert not writer.closed
    writer.close()
    assert writer.closed
    assert s3.get("writer/mixed") == expected


def test_writer_close_is_idempotent_and_write_after_close_raises(s3):
    writer = client(s3).put_object(s3.bucket, "writer/closed")
    writer.write(b"abc")
    writer.close()
    writer.close()
    assert writer.closed
    with pytest.raises(ValueError):
        writer.write(b"more")
    assert s3.get("writer/closed") == b"abc"


def test_writer_rejects_str(s3):
    with client(s3).put_object(s3.bucket, "writer/str") as writer:
        writer.write(b"ok")
        with pytest.raises(TypeError):
            writer.write("text")
        assert writer.tell() == 2
    assert s3.get("writer/str") == b"ok"


def test_empty_writer_creates_empty_object(s3):
    with client(s3).put_object(s3.bucket, "writer/empty"):
        pass
    assert s3.get("writer/empty") == b""


def test_object_appears_only_when_writer_closes(s3):
    writer = client(s3).put_object(s3.bucket, "writer/later")
    writer.write(b"x" * 1000)
    assert "writer/later" not in s3.keys()
    writer.close()
    assert s3.keys() == ["writer/later"]


class Boom(Exception):
    pass


@pytest.mark.parametrize("size", [0, 1000, 11 * MIB], ids=["nothing", "small", "multipart"])
def test_exception_in_with_block_aborts_the_upload(s3, size):
    writer = client(s3, PART_CONFIG).put_object(s3.bucket, "writer/aborted")
    with pytest.raises(Boom):
        with writer:
            writer.write(random.Random(1).randbytes(size))
            raise Boom()
    assert writer.closed
    assert s3.keys() == []
    assert s3.multipart_uploads() == []


def test_many_small_writes_across_part_boundaries(s3):
    rng = random.Random(7)
    data = rng.randbytes(11 * MIB + 4321)
    writer = client(s3, PART_CONFIG).put_object(s3.bucket, "writer/chunks")
    position = 0
    with writer:
        while position < len(data):
            n = rng.randint(1, 200_000)
            chunk = data[position : position + n]
            assert writer.write(chunk) == len(chunk)
            position += len(chunk)
            assert writer.tell() == position
    assert s3.get("writer/chunks") == data
    assert s3.multipart_uploads() == []


def test_dropped_unclosed_writer_leaves_no_object(s3):
    import gc

    writer = client(s3, PART_CONFIG).put_object(s3.bucket, "writer/dropped")
    writer.write(b"y" * (6 * MIB))
    del writer
    gc.collect()
    assert s3.keys() == []
    assert s3.multipart_uploads() == []


def test_writer_abort_leaves_no_object_and_refuses_writes(s3):
    writer = client(s3, PART_CONFIG).put_object(s3.bucket, "writer/abort")
    writer.write(b"z" * (6 * MIB))
    writer.abort()
    assert writer.closed
    with pytest.raises(ValueError):
        writer.write(b"more")
    writer.close()  # closing an aborted writer does not publish it
    assert s3.keys() == []
    assert s3.multipart_uploads() == []


def test_writer_overwrites_existing_object(s3):
    s3.put("writer/over", b"old contents that are longer")
    with client(s3).put_object(s3.bucket, "writer/over") as writer:
        writer.write(b"new")
    assert s3.get("writer/over") == b"new"


# --------------------------------------------------------------------------- S3Checkpoint


def _small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 2)
    )


def _assert_state_dicts_equal(loaded, expected):
    assert list(loaded) == list(expected)
    for name in expected:
        assert torch.equal(loaded[name], expected[name]), name
        assert loaded[name].dtype == expected[name].dtype


READERS = {
    "default": None,
    "sequential": S3ReaderConstructor.sequential(),
    "range_based": S3ReaderConstructor.range_based(),
    "range_based_0": S3ReaderConstructor.range_based(buffer_size=0),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_checkpoint_round_trips_small_model(s3, reader):
    checkpoint = S3Checkpoint(region=s3.region, endpoint=s3.endpoint, reader_constructor=READERS[reader])
    state = _small_model().state_dict()
    with checkpoint.writer(s3.uri("ckpt/model.pt")) as writer:
        torch.save(state, writer)
    assert s3.keys("ckpt/") == ["ckpt/model.pt"]
    with checkpoint.reader(s3.uri("ckpt/model.pt")) as reader_file:
        assert reader_file.key == "ckpt/model.pt" and reader_file.bucket == s3.bucket
        loaded = torch.load(reader_file, weights_only=True)
    _assert_state_dicts_equal(loaded, state)
    model = _small_model()
    model.load_state_dict(loaded)


@pytest.mark.parametrize("reader", ["sequential", "range_based"])
def test_checkpoint_round_trips_multipart_state_dict(s3, reader):
    checkpoint = S3Checkpoint(
        region=s3.region, endpoint=s3.endpoint, s3client_config=PART_CONFIG, reader_constructor=READERS[reader]
    )
    generator = torch.Generator().manual_seed(3)
    state = {
        "big": torch.randn(3 * MIB, generator=generator),  # 12 MiB of float32
        "ints": torch.arange(1000, dtype=torch.int64),
        "nested.weight": torch.randn(17, 5, generator=generator).to(torch.float16),
    }
    with checkpoint.writer(s3.uri("ckpt/big.pt")) as writer:
        torch.save(state, writer)
    assert len(s3.get("ckpt/big.pt")) > 12 * MIB
    assert s3.multipart_uploads() == []
    with checkpoint.reader(s3.uri("ckpt/big.pt")) as reader_file:
        loaded = torch.load(reader_file, weights_only=True)
    _assert_state_dicts_equal(loaded, state)


def test_checkpoint_reports_its_region_and_endpoint(s3):
    """What it was made with, as the original's attributes; no endpoint given reads as None."""
    checkpoint = S3Checkpoint(region="eu-north-1", endpoint=s3.endpoint)
    assert (checkpoint.region, checkpoint.endpoint) == ("eu-north-1", s3.endpoint)
    default = S3Checkpoint("sa-east-1")
    assert (default.region, default.endpoint) == ("sa-east-1", None)


@pytest.mark.parametrize("uri", ["not-a-uri", "http://bucket/key", "s3:///key", "s3://bad bucket/key"])
def test_checkpoint_bad_uri_raises_value_error_naming_it(s3, uri):
    checkpoint = S3Checkpoint(region=s3.region, endpoint=s3.endpoint)
    with pytest.raises(ValueError) as raised:
        checkpoint.writer(uri)
    assert uri in str(raised.value)
    with pytest.raises(ValueError) as raised:
        checkpoint.reader(uri)
    assert uri in str(raised.value)


@pytest.mark.parametrize("reader", ["sequential", "range_based"])
def test_checkpoint_missing_key_raises_no_such_key_at_first_read(s3, reader):
    checkpoint = S3Checkpoint(region=s3.region, endpoint=s3.endpoint, reader_constructor=READERS[reader])
    uri = s3.uri("ckpt/missing.pt")
    reader_file = checkpoint.reader(uri)  # nothing is sent yet
    with pytest.raises(S3Exception) as raised:
        reader_file.read(1)
    assert raised.value.code == "NoSuchKey"
    assert raised.value.status == 404
    assert uri in str(raised.value)


def test_checkpoint_torch_load_of_missing_key_raises_s3_exception(s3):
    checkpoint = S3Checkpoint(region=s3.region, endpoint=s3.endpoint)
    with pytest.raises(S3Exception) as raised:
        torch.load(checkpoint.reader(s3.uri("nope.pt")), weights_only=True)
    assert raised.value.code == "NoSuchKey"


def test_checkpoint_writer_to_missing_bucket_raises_s3_exception(s3):
    checkpoint = S3Checkpoint(region=s3.region, endpoint=s3.endpoint)
    with pytest.raises(S3Exception) as raised:
        with checkpoint.writer(f"s3://{s3.bucket}-missing/model.pt") as writer:
            torch.save({"w": torch.ones(3)}, writer)
    assert raised.value.code == "NoSuchBucket"


def test_failed_upload_is_raised_again_by_later_writes_and_close(s3):
    """After a write's upload failed, later writes and close() raise that same S3 error, not a
    "closed" ValueError or nothing at all: the caller learns why there is no object."""
    missing = f"{s3.bucket}-missing"
    writer = client(s3).put_object(missing, "writer/failed")
    with pytest.raises(NoSuchBucketError) as raised:
        for _ in range(64):  # the multipart upload starts, and fails, while the writes go on
            writer.write(b"w" * MIB)
    failure = raised.value
    assert missing in str(failure)
    assert writer.closed
    with pytest.raises(NoSuchBucketError) as again:
        writer.write(b"more")
    assert again.value is failure
    with pytest.raises(NoSuchBucketError) as on_close:
        writer.close()
    assert on_close.value is failure


def test_torch_save_into_a_failed_upload_raises_the_s3_exception_last(s3):
    """torch.save answers a failed write with a RuntimeError of its own ("unexpected pos"): leaving
    the with block raises S3's error instead, torch's as its context, so the traceback ends with the
    cause."""
    checkpoint = S3Checkpoint(region=s3.region, endpoint=s3.endpoint)
    missing = f"{s3.bucket}-missing"
    state = {"big": torch.zeros(5 * MIB)}  # 20 MiB: the upload fails while torch.save is still writing
    with pytest.raises(S3Exception) as raised:
        with checkpoint.writer(f"s3://{missing}/model.pt") as writer:
            torch.save(state, writer)
    assert isinstance(raised.value, NoSuchBucketError)
    assert missing in str(raised.value)
    torch_error = raised.value.__context__
    assert isinstance(torch_error, RuntimeError) and not isinstance(torch_error, S3Exception)
    assert writer.closed


# --------------------------------------------------------------------------- README sample


README_CHECKPOINT_SNIPPET = """\
from s3torchconnector import S3Checkpoint

import torchvision
import torch

CHECKPOINT_URI="s3://<BUCKET>/<KEY>/"
REGION = "us-east-1"
checkpoint = S3Checkpoint(region=REGION)

model = torchvision.models.resnet18()

# Save checkpoint to S3
with checkpoint.writer(CHECKPOINT_URI + "epoch0.ckpt") as writer:
    torch.save(model.state_dict(), writer)

# Load checkpoint from S3
with checkpoint.reader(CHECKPOINT_URI + "epoch0.ckpt") as reader:
    state_dict = torch.load(reader)

model.load_state_dict(state_dict)
"""


def test_readme_checkpoint_sample_runs(s3, monkeypatch):
    # torchvision is not installed: a stand-in whose resnet18() is a small torch.nn model.
    torchvision = types.ModuleType("torchvision")
    torchvision.models = types.SimpleNamespace(resnet18=_small_model)
    monkeypatch.setitem(sys.modules, "torchvision", torchvision)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    assert s3.region == "us-east-1"
    code = README_CHECKPOINT_SNIPPET.replace("<BUCKET>", s3.bucket).replace("<KEY>", "checkpoints")
    namespace = {"__name__": "readme_sample"}
    exec(compile(code, "README-checkpoint", "exec"), namespace)
    assert s3.keys() == ["checkpoints/epoch0.ckpt"]
    _assert_state_dicts_equal(namespace["state_dict"], _small_model().state_dict())
    saved = torch.load(io.BytesIO(s3.get("checkpoints/epoch0.ckpt")), weights_only=True)
    _assert_state_dicts_equal(saved, _small_model().state_dict())
