"""S3Checkpoint and torch.distributed.checkpoint (s3torchconnector.dcp) against rclone's `serve s3`:
state dicts saved and loaded back equal, and the saved bytes are what torch.save wrote."""

import io

import pytest
import torch
import torch.distributed.checkpoint as dcp
from training_state import assert_nested_equal, model_and_optimizer

from s3torchconnector import S3Checkpoint, S3ClientConfig, S3ReaderConstructor
from s3torchconnector.dcp import S3StorageReader, S3StorageWriter

MIB = 1024 * 1024

pytestmark = pytest.mark.filterwarnings(
    "ignore:torch.distributed is disabled:UserWarning",
    "ignore:Detected an existing checkpoint:UserWarning",
)


def assert_state_dicts_equal(loaded, expected):
    assert list(loaded) == list(expected)
    for name, tensor in expected.items():
        assert loaded[name].dtype == tensor.dtype, name
        assert torch.equal(loaded[name], tensor), name


@pytest.fixture(scope="module")
def large_state():
    """About 200 MB of float32 (and a few other tensors)."""
    generator = torch.Generator().manual_seed(0)
    return {
        "embedding.weight": torch.randn(25_000, 1024, generator=generator),  # 100 MB
        "layer.0.weight": torch.randn(12_500, 1024, generator=generator),  # 50 MB
        "layer.1.weight": torch.randn(12_500, 1024, generator=generator),  # 50 MB
        "layer.1.bias": torch.randn(1024, generator=generator).to(torch.float16),
        "step": torch.tensor(1234, dtype=torch.int64),
    }


def test_checkpoint_of_200_mb_round_trips(s3, large_state):
    checkpoint = S3Checkpoint(region=s3.region, endpoint=s3.endpoint)
    with checkpoint.writer(s3.uri("ckpt/large.pt")) as writer:
        torch.save(large_state, writer)
    assert s3.keys() == ["ckpt/large.pt"]
    assert s3.boto3.head_object(Bucket=s3.bucket, Key="ckpt/large.pt")["ContentLength"] > 200 * 1000 * 1000
    with checkpoint.reader(s3.uri("ckpt/large.pt")) as reader:
        loaded = torch.load(reader, weights_only=True)
    assert_state_dicts_equal(loaded, large_state)
    # the stored bytes are a checkpoint in their own right, as boto3 reads them
    assert_state_dicts_equal(torch.load(io.BytesIO(s3.get("ckpt/large.pt")), weights_only=True), large_state)


@pytest.mark.parametrize(
    "reader", [S3ReaderConstructor.sequential(), S3ReaderConstructor.range_based()], ids=["sequential", "range_based"]
)
def test_checkpoint_written_by_boto3_loads(s3, reader):
    """An upload in 5 MiB parts, as boto3 and the AWS CLI make them, read by both readers."""
    from boto3.s3.transfer import TransferConfig

    generator = torch.Generator().manual_seed(1)
    state = {"w": torch.randn(4 * MIB, generator=generator), "b": torch.arange(10)}  # 16 MiB of float32
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    s3.boto3.upload_fileobj(
        buffer,
        s3.bucket,
        "ckpt/boto3.pt",
        Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB),
    )
    checkpoint = S3Checkpoint(region=s3.region, endpoint=s3.endpoint, reader_constructor=reader)
    with checkpoint.reader(s3.uri("ckpt/boto3.pt")) as reader_file:
        assert_state_dicts_equal(torch.load(reader_file, weights_only=True), state)


@pytest.mark.parametrize(
    "reader",
    [None, S3ReaderConstructor.sequential(), S3ReaderConstructor.range_based()],
    ids=["dcp_optimized", "sequential", "range_based"],
)
def test_dcp_save_and_load_model_and_optimizer(s3, reader):
    model, optimizer = model_and_optimizer(0)
    extra = torch.randn(3 * MIB, generator=torch.Generator().manual_seed(2))  # 12 MiB: uploaded in parts
    state = {"model": model.state_dict(), "optim": optimizer.state_dict(), "extra": extra}
    config = S3ClientConfig(part_size=5 * MIB)
    dcp.save(
        state, storage_writer=S3StorageWriter(s3.region, s3.uri("dcp"), s3client_config=config, endpoint=s3.endpoint)
    )
    assert s3.keys() == ["dcp/.metadata", "dcp/__0_0.distcp"]

    fresh_model, fresh_optimizer = model_and_optimizer(1)
    target = {"model": fresh_model.state_dict(), "optim": fresh_optimizer.state_dict(), "extra": torch.zeros(3 * MIB)}
    dcp.load(
        target,
        storage_reader=S3StorageReader(s3.region, s3.uri("dcp"), endpoint=s3.endpoint, reader_constructor=reader),
    )
    fresh_model.load_state_dict(target["model"])
    fresh_optimizer.load_state_dict(target["optim"])
    assert_nested_equal(model.state_dict(), fresh_model.state_dict(), "model")
    assert_nested_equal(optimizer.state_dict(), fresh_optimizer.state_dict(), "optim")
    assert torch.equal(target["extra"], extra)


def test_dcp_partial_load_of_the_model_only(s3):
    """The DCP-optimized reader fetches byte ranges of the data file: the model alone loads right."""
    model, optimizer = model_and_optimizer(0, width=256)
    dcp.save(
        {"model": model.state_dict(), "optim": optimizer.state_dict()},
        storage_writer=S3StorageWriter(s3.region, s3.uri("partial"), endpoint=s3.endpoint),
    )
    fresh, _ = model_and_optimizer(1, width=256)
    target = {"model": fresh.state_dict()}
    dcp.load(target, storage_reader=S3StorageReader(s3.region, s3.uri("partial"), endpoint=s3.endpoint))
    assert_nested_equal(model.state_dict(), target["model"], "model")
