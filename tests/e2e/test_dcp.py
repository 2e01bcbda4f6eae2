"""PyTorch Distributed Checkpoint on S3 (s3torchconnector.dcp) against the local S3 server:
single process and two gloo ranks, every prefix strategy, async_save, the DCP-optimized reader's
partial loads (bytes fetched counted at the client), and .metadata written last."""

import io
import json
import os
import subprocess
import sys
import threading
import urllib.request
import uuid
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
from training_state import assert_nested_equal, model_and_optimizer

from s3torchconnector import NoSuchBucketError, S3Exception, S3ReaderConstructor
from s3torchconnector._s3client import S3Client
from s3torchconnector.dcp import (
    BinaryPrefixStrategy,
    DefaultPrefixStrategy,
    HexPrefixStrategy,
    NumericPrefixStrategy,
    RoundRobinPrefixStrategy,
    S3FileSystem,
    S3StorageReader,
    S3StorageWriter,
)
from s3torchconnector.s3reader.dcp_optimized import DCPOptimizedS3Reader, ItemRange, coalesce_ranges
from s3torchconnector.s3reader.sequential import SequentialS3Reader

REGION = "us-east-1"

pytestmark = pytest.mark.filterwarnings(
    "ignore:torch.distributed is disabled:UserWarning",
    "ignore:Detected an existing checkpoint:UserWarning",
)

# name -> (strategy factory, the prefix of rank r's files under the checkpoint path, for 1 and 2 ranks)
STRATEGIES = {
    "default": (lambda: DefaultPrefixStrategy(), lambda r, n: f"__{r}_"),
    "binary": (lambda: BinaryPrefixStrategy(), lambda r, n: f"{'1' if r % n else '0'}000000000/__{r}_"),
    "binary-epoch": (
        lambda: BinaryPrefixStrategy(epoch_num=7),
        lambda r, n: f"{'1' if r % n else '0'}000000000/epoch_7/__{r}_",
    ),
    "hex": (
        lambda: HexPrefixStrategy(epoch_num=3, min_prefix_length=4),
        lambda r, n: f"{r % n:x}000/epoch_3/__{r}_",
    ),
    "numeric": (lambda: NumericPrefixStrategy(16, min_prefix_length=2), lambda r, n: f"{r % n:x}0/__{r}_"),
    "round-robin": (
        lambda: RoundRobinPrefixStrategy(["pa", "pb"], epoch_num=1),
        lambda r, n: f"{['pa', 'pb'][r % 2]}/epoch_1/__{r}_",
    ),
}


def _save_and_load_round_trip(path: str, endpoint: str, rank: int = 0, **writer_kwargs) -> None:
    """Saves a model and optimizer (plus a tensor of this rank's own), loads them into fresh
    objects and checks every value came back."""
    model, optimizer = model_and_optimizer(0)
    own = torch.full((32,), float(rank + 1))
    state = {"model": model.state_dict(), "optim": optimizer.state_dict(), f"rank{rank}": own}
    dcp.save(state, storage_writer=S3StorageWriter(REGION, path, endpoint=endpoint, **writer_kwargs))

    fresh_model, fresh_optimizer = model_and_optimizer(1)
    target = {"model": fresh_model.state_dict(), "optim": fresh_optimizer.state_dict(), f"rank{rank}": torch.zeros(32)}
    dcp.load(target, storage_reader=S3StorageReader(REGION, path, endpoint=endpoint))
    fresh_model.load_state_dict(target["model"])
    fresh_optimizer.load_state_dict(target["optim"])
    assert_nested_equal(model.state_dict(), fresh_model.state_dict(), "model")
    assert_nested_equal(optimizer.state_dict(), fresh_optimizer.state_dict(), "optim")
    assert torch.equal(target[f"rank{rank}"], own)


class RecordedGets:
    """Every GET the S3Client starts: (key, start, end), None bounds for whole objects."""

    def __init__(self, monkeypatch):
        self.calls = []
        original = S3Client._get_object_stream

        def recording(client, bucket, key, start=None, end=None, **kwargs):
            self.calls.append((key, start, end))
            return original(client, bucket, key, start, end, **kwargs)

        monkeypatch.setattr(S3Client, "_get_object_stream", recording)
        self.heads = []
        original_head = S3Client.head_object

        def recording_head(client, bucket, key, *args, **kwargs):
            self.heads.append(key)
            return original_head(client, bucket, key, *args, **kwargs)

        monkeypatch.setattr(S3Client, "head_object", recording_head)

    def of(self, key):
        return [(start, end) for k, start, end in self.calls if k == key]

    def bytes_of(self, key, size):
        return sum((size if end is None else end) - (start or 0) for start, end in self.of(key))


# ---- single process ----


def test_save_and_loadmodel_and_optimizer(s3):
    _save_and_load_round_trip(s3.uri("ckpt"), s3.endpoint)
    assert sorted(s3.keys()) == ["ckpt/.metadata", "ckpt/__0_0.distcp"]
    assert s3.multipart_uploads() == []


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_prefix_strategy_key_layout(s3, name):
    factory, prefix_of = STRATEGIES[name]
    _save_and_load_round_trip(s3.uri("ckpt"), s3.endpoint, prefix_strategy=factory())
    assert sorted(s3.keys()) == sorted(["ckpt/.metadata", f"ckpt/{prefix_of(0, 1)}0.distcp"])


def test_thread_count_writes_several_files(s3):
    _save_and_load_round_trip(s3.uri("ckpt"), s3.endpoint, thread_count=3, prefix_strategy=BinaryPrefixStrategy())
    assert sorted(s3.keys()) == ["ckpt/.metadata"] + [f"ckpt/0000000000/__0_{i}.distcp" for i in range(3)]


def test_async_save(s3):
    model, optimizer = model_and_optimizer(0)
    state = {"model": model.state_dict(), "optim": optimizer.state_dict()}
    future = dcp.async_save(state, storage_writer=S3StorageWriter(REGION, s3.uri("async"), endpoint=s3.endpoint))
    future.result()
    assert sorted(s3.keys()) == ["async/.metadata", "async/__0_0.distcp"]
    fresh_model, fresh_optimizer = model_and_optimizer(1)
    target = {"model": fresh_model.state_dict(), "optim": fresh_optimizer.state_dict()}
    dcp.load(target, storage_reader=S3StorageReader(REGION, s3.uri("async"), endpoint=s3.endpoint))
    assert_nested_equal(model.state_dict(), target["model"])


def test_checkpoint_id_and_sequential_reader(s3):
    """checkpoint_id= re-targets the writer and reader; the sequential reader loads whole files."""
    model, _ = model_and_optimizer(0)
    writer = S3StorageWriter(REGION, s3.uri("unused"), endpoint=s3.endpoint)
    dcp.save({"model": model.state_dict()}, checkpoint_id=s3.uri("by-id"), storage_writer=writer)
    assert sorted(s3.keys()) == ["by-id/.metadata", "by-id/__0_0.distcp"]
    reader = S3StorageReader(
        REGION, s3.uri("unused"), endpoint=s3.endpoint, reader_constructor=S3ReaderConstructor.sequential()
    )
    fresh, _ = model_and_optimizer(1)
    target = {"model": fresh.state_dict()}
    dcp.load(target, checkpoint_id=s3.uri("by-id"), storage_reader=reader)
    assert_nested_equal(model.state_dict(), target["model"])


def test_partial_load_fetches_only_the_model_bytes(s3, monkeypatch):
    model, optimizer = model_and_optimizer(0, width=256)
    path = s3.uri("partial")
    dcp.save(
        {"model": model.state_dict(), "optim": optimizer.state_dict()},
        storage_writer=S3StorageWriter(REGION, path, endpoint=s3.endpoint),
    )
    data_key = "partial/__0_0.distcp"
    file_size = s3.boto3.head_object(Bucket=s3.bucket, Key=data_key)["ContentLength"]
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())

    gets = RecordedGets(monkeypatch)
    reader = S3StorageReader(REGION, path, endpoint=s3.endpoint)
    assert S3ReaderConstructor.get_reader_type_string(reader.reader_constructor) == "dcp_optimized"
    fresh, _ = model_and_optimizer(1, width=256)
    target = {"model": fresh.state_dict()}
    dcp.load(target, storage_reader=reader)
    assert_nested_equal(model.state_dict(), target["model"])

    planned = sum(info.length for index, info in reader.storage_data.items() if index.fqn.startswith("model."))
    fetched = gets.bytes_of(data_key, file_size)
    assert gets.of("partial/.metadata") == [(0, None)]  # read whole, sequentially: one GET from its first byte
    assert all(start is not None for start, _ in gets.of(data_key)), "the data file was fetched whole"
    assert len(gets.of(data_key)) == 1  # the model's tensors are adjacent: one coalesced request
    assert data_key not in gets.heads  # the planned ranges are known to exist: no HEAD needed
    assert fetched == planned
    assert fetched <= model_bytes + 2048 * len(target["model"])  # torch.save framing per tensor
    assert fetched < file_size / 2
    print(f"partial load: fetched {fetched} of {file_size} bytes (model tensors {model_bytes} bytes)")

    # The sequential reader, for contrast, downloads the whole file.
    gets.calls.clear()
    sequential = S3StorageReader(
        REGION, path, endpoint=s3.endpoint, reader_constructor=S3ReaderConstructor.sequential()
    )
    dcp.load({"model": model_and_optimizer(2, width=256)[0].state_dict()}, storage_reader=sequential)
    assert gets.bytes_of(data_key, file_size) == file_size


@pytest.mark.parametrize("max_gap_size, requests", [(0, 2), (1 << 20, 1)])
def test_ranges_coalesce_within_max_gap_size(s3, monkeypatch, max_gap_size, requests):
    """Loading the two weights but not the bias between them: one request when the gap may be
    bridged, two exact ones when it may not."""
    model, _ = model_and_optimizer(0)
    path = s3.uri("gaps")
    dcp.save({"model": model.state_dict()}, storage_writer=S3StorageWriter(REGION, path, endpoint=s3.endpoint))
    gets = RecordedGets(monkeypatch)
    reader = S3StorageReader(
        REGION, path, endpoint=s3.endpoint, reader_constructor=S3ReaderConstructor.dcp_optimized(max_gap_size)
    )
    target = {"model": {"0.weight": torch.zeros(64, 64), "2.weight": torch.zeros(4, 64)}}
    dcp.load(target, storage_reader=reader)
    assert torch.equal(target["model"]["0.weight"], model.state_dict()["0.weight"])
    assert torch.equal(target["model"]["2.weight"], model.state_dict()["2.weight"])

    infos = {index.fqn: info for index, info in reader.storage_data.items()}
    wanted = [(infos[f].offset, infos[f].offset + infos[f].length) for f in ("model.0.weight", "model.2.weight")]
    calls = gets.of("gaps/__0_0.distcp")
    assert len(calls) == requests
    if requests == 2:
        assert calls == sorted(wanted)
    else:
        assert calls == [(min(w[0] for w in wanted), max(w[1] for w in wanted))]


def _record_closes(monkeypatch, on_put=None):
    """The keys of uploads in the order they completed; ``on_put(key, writer)`` sees each new writer."""
    completed = []
    original = S3Client.put_object

    def put_object(client, bucket, key, *args, **kwargs):
        writer = original(client, bucket, key, *args, **kwargs)
        close = writer.close

        def recording_close():
            if not writer.closed:
                close()
                completed.append(key)

        writer.close = recording_close
        if on_put is not None:
            on_put(key, writer)
        return writer

    monkeypatch.setattr(S3Client, "put_object", put_object)
    return completed


def test_metadata_is_written_last(s3, monkeypatch):
    completed = _record_closes(monkeypatch)
    model, optimizer = model_and_optimizer(0)
    state = {"model": model.state_dict(), "optim": optimizer.state_dict()}
    dcp.save(state, storage_writer=S3StorageWriter(REGION, s3.uri("order"), endpoint=s3.endpoint, thread_count=3))
    data_keys = [f"order/__0_{i}.distcp" for i in range(3)]
    assert sorted(completed[:-1]) == data_keys
    assert completed[-1] == "order/.metadata"

    # Saving over it again: the old .metadata is gone before any data file is written.
    metadata_present_at_data_puts = []

    def check(key, writer):
        if key.endswith(".distcp"):
            keys = s3.keys("order/")
            metadata_present_at_data_puts.append("order/.metadata" in keys)

    completed = _record_closes(monkeypatch, on_put=check)
    dcp.save(state, storage_writer=S3StorageWriter(REGION, s3.uri("order"), endpoint=s3.endpoint, thread_count=3))
    assert metadata_present_at_data_puts == [False, False, False]
    assert completed[-1] == "order/.metadata"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("failing_thread", ["main", "writer"])
def test_interrupted_save_leaves_no_metadata(s3, monkeypatch, failing_thread):
    """An upload failing in either of the two writer threads fails the save and leaves no .metadata.

    FileSystemWriter's extra threads (thread_count > 1) drop their exceptions: only S3StorageWriter's
    check for missing results turns a failure there into a failed save. The main thread waits at
    its first upload until the extra thread has opened one, so each thread holds one of the two
    files and the failure lands in the chosen thread every time."""
    model, optimizer = model_and_optimizer(0)
    state = {"model": model.state_dict(), "optim": optimizer.state_dict()}
    path = s3.uri("broken")
    dcp.save(state, storage_writer=S3StorageWriter(REGION, path, endpoint=s3.endpoint, thread_count=2))
    assert sorted(s3.keys()) == ["broken/.metadata", "broken/__0_0.distcp", "broken/__0_1.distcp"]
    previous = {key: s3.get(key) for key in s3.keys()}

    writer_thread_started = threading.Event()
    writer_threads = set()
    failed = []

    def fail_in_chosen_thread(key, writer):
        if not key.endswith(".distcp"):
            return
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            assert writer_thread_started.wait(60), "the second writer thread never opened an upload"
        else:
            writer_threads.add(threading.current_thread())
            writer_thread_started.set()
        if in_main == (failing_thread == "main"):
            failed.append(key)

            def write(data):
                raise OSError("connection lost mid-checkpoint")

            writer.write = write

    _record_closes(monkeypatch, on_put=fail_in_chosen_thread)
    with pytest.raises(dcp.CheckpointException, match="connection lost"):
        dcp.save(state, storage_writer=S3StorageWriter(REGION, path, endpoint=s3.endpoint, thread_count=2))
    for thread in writer_threads:  # a failure in the main thread does not wait for the other upload
        thread.join(60)
    assert len(failed) == 1
    assert "broken/.metadata" not in s3.keys()  # the earlier checkpoint's metadata was removed first
    assert s3.get(failed[0]) == previous[failed[0]]  # the previous save's file, never half a new one
    assert s3.multipart_uploads() == []
    with pytest.raises(dcp.CheckpointException, match="NoSuchKey"):
        dcp.load(state, storage_reader=S3StorageReader(REGION, path, endpoint=s3.endpoint))


LARGE = 5 * 1024 * 1024  # float32 elements: 20 MiB, so an upload fails during torch.save's writes


def _assert_reports_no_such_bucket(raised, bucket: str) -> None:
    """The rank's failure is S3's error, its class and message in what the user reads."""
    error, _ = raised.value.failures[0]
    assert isinstance(error, NoSuchBucketError) and bucket in str(error)
    assert "NoSuchBucketError" in str(raised.value) and bucket in str(raised.value)


def test_failed_upload_is_reported_as_the_s3_exception(s3):
    """Not as the RuntimeError torch.save raises when a write into the upload fails."""
    missing = f"{s3.bucket}-missing"
    state = {"big": torch.zeros(LARGE), "small": torch.ones(8)}
    with pytest.raises(dcp.CheckpointException) as raised:
        dcp.save(state, storage_writer=S3StorageWriter(REGION, f"s3://{missing}/ckpt", endpoint=s3.endpoint))
    _assert_reports_no_such_bucket(raised, missing)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_failed_upload_in_a_writer_thread_is_reported_as_the_s3_exception(s3, monkeypatch):
    """FileSystemWriter's extra threads drop their exceptions: S3StorageWriter raises the one the
    failed upload met. Only the extra thread's upload goes to a missing bucket; the main thread
    waits at its upload until that one is open, so each thread holds one of the two files."""
    missing = f"{s3.bucket}-missing"
    writer_thread_opened = threading.Event()
    put_object = S3Client.put_object

    def put_in_missing_bucket_from_writer_thread(client, bucket, key, *args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            assert writer_thread_opened.wait(60), "the second writer thread never opened an upload"
        else:
            writer_thread_opened.set()
            bucket = missing
        return put_object(client, bucket, key, *args, **kwargs)

    monkeypatch.setattr(S3Client, "put_object", put_in_missing_bucket_from_writer_thread)
    state = {"a": torch.zeros(LARGE), "b": torch.ones(LARGE)}
    with pytest.raises(dcp.CheckpointException) as raised:
        dcp.save(state, storage_writer=S3StorageWriter(REGION, s3.uri("ckpt"), endpoint=s3.endpoint, thread_count=2))
    _assert_reports_no_such_bucket(raised, missing)
    assert "ckpt/.metadata" not in s3.keys()


def test_overwrite_false_refuses_an_existing_checkpoint(s3):
    model, _ = model_and_optimizer(0)
    path = s3.uri("keep")
    dcp.save({"model": model.state_dict()}, storage_writer=S3StorageWriter(REGION, path, endpoint=s3.endpoint))
    with pytest.raises(dcp.CheckpointException, match="already exists"):
        dcp.save(
            {"model": model.state_dict()},
            storage_writer=S3StorageWriter(REGION, path, endpoint=s3.endpoint, overwrite=False),
        )
    assert "keep/.metadata" in s3.keys()


def test_s3_file_system_operations(s3):
    client = S3Client(REGION, endpoint=s3.endpoint)
    fs = S3FileSystem(REGION, s3_client=client)
    assert fs.s3_client is client
    base = fs.init_path(s3.uri("fs"))
    assert fs.concat_path(base, "a.bin") == s3.uri("fs/a.bin")
    assert fs.concat_path(s3.uri("fs/"), "a.bin") == s3.uri("fs/a.bin")
    with fs.create_stream(fs.concat_path(base, "a b+c.bin"), "wb") as stream:
        stream.write(b"hello")
    assert fs.exists(s3.uri("fs/a b+c.bin"))
    assert not fs.exists(s3.uri("fs/missing"))
    fs.rename(s3.uri("fs/a b+c.bin"), s3.uri("fs/renamed.bin"))
    assert s3.keys("fs/") == ["fs/renamed.bin"]
    with fs.create_stream(s3.uri("fs/renamed.bin"), "rb") as stream:
        assert stream.read() == b"hello"
    assert fs.ls(base) == [s3.uri("fs/renamed.bin")]
    fs.rm_file(s3.uri("fs/renamed.bin"))
    fs.rm_file(s3.uri("fs/renamed.bin"))  # already gone: fine
    assert s3.keys() == []
    fs.mkdir(s3.uri("fs/dir"))  # nothing to do
    with pytest.raises(ValueError, match="mode"):
        with fs.create_stream(s3.uri("fs/x"), "ab"):
            pass
    with pytest.raises(ValueError, match="bucket"):
        fs.rename(s3.uri("fs/x"), "s3://other-bucket/x")
    assert S3FileSystem.validate_checkpoint_id(s3.uri("ckpt"))
    assert S3StorageWriter.validate_checkpoint_id(s3.uri("ckpt"))
    assert S3StorageReader.validate_checkpoint_id(s3.uri("ckpt"))
    assert not S3FileSystem.validate_checkpoint_id("/tmp/ckpt")
    assert not S3FileSystem.validate_checkpoint_id(42)


def _moto_auth(endpoint: str, after_requests: str) -> str:
    """Sets after how many requests moto starts checking credentials ('inf': never), through its
    own HTTP switch; returns the previous setting."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=after_requests.encode(),
        headers={"Content-Type": "text/plain"},  # a form body would be parsed away
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]


@pytest.fixture
def access_denied(s3):
    """While active, the local server refuses every request with 403: it checks credentials, and
    the test credentials belong to no one."""
    previous = _moto_auth(s3.endpoint, "0")
    try:
        yield s3
    finally:
        _moto_auth(s3.endpoint, previous)


def test_exists_raises_errors_other_than_not_found(access_denied):
    """exists() answers False only for "not found": a refused HEAD (403) must not pass for a
    missing checkpoint, or a save would carry on and a load would report no checkpoint."""
    s3 = access_denied
    fs = S3FileSystem(REGION, s3_client=S3Client(REGION, endpoint=s3.endpoint))
    with pytest.raises(S3Exception) as error:
        fs.exists(s3.uri("ckpt/.metadata"))
    assert error.value.status == 403
    assert error.value.code == "AccessDenied"


class _FailingDeletes:
    """Makes a client's delete_object fail (as S3 does now and then, with a 500 InternalError) the
    first ``failures`` times, then delete for real."""

    def __init__(self, client: S3Client, failures: int):
        self.attempts = []
        delete = client.delete_object

        def delete_object(bucket, key):
            self.attempts.append(key)
            if len(self.attempts) <= failures:
                error = S3Exception(f"InternalError: DeleteObject of s3://{bucket}/{key} failed (HTTP 500)")
                error.code, error.status, error.bucket, error.key = "InternalError", 500, bucket, key
                error.request_id, error.operation = "", "DeleteObject"
                raise error
            delete(bucket, key)

        client.delete_object = delete_object


def test_rename_retries_a_failed_delete(s3):
    """DCP renames through copy then delete; a delete that fails once is retried, so the old name
    does not linger beside the new one."""
    client = S3Client(REGION, endpoint=s3.endpoint)
    fs = S3FileSystem(REGION, s3_client=client)
    s3.put("fs/tmp.bin", b"payload")
    deletes = _FailingDeletes(client, failures=1)
    fs.rename(s3.uri("fs/tmp.bin"), s3.uri("fs/final.bin"))
    assert deletes.attempts == ["fs/tmp.bin", "fs/tmp.bin"]
    assert s3.keys() == ["fs/final.bin"]
    assert s3.get("fs/final.bin") == b"payload"


def test_rename_gives_up_after_three_failed_deletes(s3):
    """A delete that keeps failing is reported, after three attempts, and the data is not lost."""
    client = S3Client(REGION, endpoint=s3.endpoint)
    fs = S3FileSystem(REGION, s3_client=client)
    s3.put("fs/tmp.bin", b"payload")
    deletes = _FailingDeletes(client, failures=3)
    with pytest.raises(S3Exception, match="InternalError"):
        fs.rename(s3.uri("fs/tmp.bin"), s3.uri("fs/final.bin"))
    assert deletes.attempts == ["fs/tmp.bin"] * 3
    assert sorted(s3.keys()) == ["fs/final.bin", "fs/tmp.bin"]
    assert s3.get("fs/final.bin") == b"payload"


@pytest.mark.parametrize("thread_count", [0, -1, True, 1.5, "2", None])
def test_writer_rejects_a_bad_thread_count(thread_count):
    """Refused when the writer is made, before a save has removed the previous checkpoint's metadata."""
    with pytest.raises(ValueError, match="thread_count"):
        S3StorageWriter(REGION, "s3://bucket/ckpt", thread_count=thread_count)


def test_writer_rejects_a_prefix_strategy_that_is_not_one():
    """A string where a strategy belongs is refused up front, not called per rank mid-save."""
    with pytest.raises(TypeError, match="prefix_strategy"):
        S3StorageWriter(REGION, "s3://bucket/ckpt", prefix_strategy="__0_")


class _RankMetadataReader(S3StorageReader):
    """Reads the metadata file one rank wrote (``__<rank>.metadata``) of a save without collectives."""

    def __init__(self, *args, rank: int, **kwargs):
        super().__init__(*args, **kwargs)
        self._metadata_rank = rank

    def read_metadata(self, *args, **kwargs):
        return super().read_metadata(rank=self._metadata_rank)


def test_save_without_collectives_writes_its_own_metadata(s3, monkeypatch):
    """use_collectives=False: the rank writes __<rank>.metadata (no shared .metadata), removes its
    previous one before any data file is written, and the checkpoint loads from it."""
    model, optimizer = model_and_optimizer(0)
    state = {"model": model.state_dict(), "optim": optimizer.state_dict()}
    path = s3.uri("solo")

    def save():
        writer = S3StorageWriter(REGION, path, endpoint=s3.endpoint, thread_count=2)
        dcp.save(state, storage_writer=writer, use_collectives=False)

    save()
    assert sorted(s3.keys()) == ["solo/__0.metadata", "solo/__0_0.distcp", "solo/__0_1.distcp"]

    metadata_present_at_data_puts = []

    def check(key, writer):
        if key.endswith(".distcp"):
            metadata_present_at_data_puts.append("solo/__0.metadata" in s3.keys("solo/"))

    completed = _record_closes(monkeypatch, on_put=check)
    save()
    assert metadata_present_at_data_puts == [False, False]
    assert completed[-1] == "solo/__0.metadata"

    fresh_model, fresh_optimizer = model_and_optimizer(1)
    target = {"model": fresh_model.state_dict(), "optim": fresh_optimizer.state_dict()}
    dcp.load(target, storage_reader=_RankMetadataReader(REGION, path, endpoint=s3.endpoint, rank=0))
    assert_nested_equal(model.state_dict(), target["model"], "model")
    assert_nested_equal(optimizer.state_dict(), target["optim"], "optim")


def _rank_saves_without_collectives(rank, endpoint, bucket, init_file):
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=2, timeout=timedelta(seconds=60)
    )
    try:
        state = {f"rank{rank}": torch.full((64,), float(rank + 1))}
        writer = S3StorageWriter(REGION, f"s3://{bucket}/nocoll", endpoint=endpoint)
        dcp.save(state, storage_writer=writer, use_collectives=False)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_ranks_without_collectives_write_their_own_data_files(s3, tmp_path):
    """Each rank plans alone without collectives: its data files must carry its own rank's prefix,
    or one rank overwrites the other's data and its metadata names the wrong file."""
    mp.spawn(
        _rank_saves_without_collectives, args=(s3.endpoint, s3.bucket, str(tmp_path / "init")), nprocs=2, join=True
    )
    assert sorted(s3.keys("nocoll/")) == [
        "nocoll/__0.metadata",
        "nocoll/__0_0.distcp",
        "nocoll/__1.metadata",
        "nocoll/__1_0.distcp",
    ]
    for rank in (0, 1):
        target = {f"rank{rank}": torch.zeros(64)}
        dcp.load(target, storage_reader=_RankMetadataReader(REGION, s3.uri("nocoll"), endpoint=s3.endpoint, rank=rank))
        assert torch.equal(target[f"rank{rank}"], torch.full((64,), float(rank + 1)))


def test_numeric_prefix_strategy_used_directly():
    """NumericPrefixStrategy is public: base 2 and 16 as the named strategies, other bases refused."""
    assert NumericPrefixStrategy(2, prefix_count=8)(5) == BinaryPrefixStrategy(prefix_count=8)(5) == "1010000000/__5_"
    assert NumericPrefixStrategy(16, prefix_count=32)(26) == HexPrefixStrategy(prefix_count=32)(26)
    strategy = NumericPrefixStrategy(16, epoch_num=2, min_prefix_length=3, prefix_count=20)
    assert strategy.generate_prefix(17) == "110/epoch_2/__17_"  # 17 = 0x011, reversed
    assert strategy(25) == "500/epoch_2/__25_"  # 20 prefixes: rank 25 shares rank 5's
    assert NumericPrefixStrategy(2, min_prefix_len=2, prefix_count=5)(3) == "110/__3_"  # 5 needs 3 bits
    for base in (10, 8, 0, "16"):
        with pytest.raises(ValueError, match="base"):
            NumericPrefixStrategy(base)


def test_dcp_optimized_reader_any_access_pattern(s3, monkeypatch):
    """Reads inside and outside the planned ranges, across items, backwards and to the end all
    return the object's bytes; planned ranges are fetched coalesced."""
    data = os.urandom(300_000)
    s3.put("blob", data)
    constructor = S3ReaderConstructor.dcp_optimized(max_gap_size=10_000)
    constructor.set_file_ranges(
        {s3.uri("blob"): [(50_000, 60_000), (1_000, 5_000), (5_000, 9_000), (200_000, 250_000), (1_000, 3_000)]}
    )
    gets = RecordedGets(monkeypatch)
    client = S3Client(REGION, endpoint=s3.endpoint)
    reader = client.get_object(s3.bucket, "blob", reader_constructor=constructor)
    assert isinstance(reader, DCPOptimizedS3Reader)
    assert [(g.start, g.end) for g in reader.range_groups] == [(1_000, 9_000), (50_000, 60_000), (200_000, 250_000)]

    reader.seek(1_000)
    assert reader.read(100) == data[1_000:1_100]
    assert gets.of("blob") == [(1_000, 9_000)]
    reader.seek(1_050)  # back within the item held
    assert reader.read(10) == data[1_050:1_060]
    reader.seek(4_990)  # across two adjacent items
    assert reader.read(20) == data[4_990:5_010]
    buffer = bytearray(1_000)
    reader.seek(-10, io.SEEK_CUR)
    assert reader.readinto(buffer) == 1_000 and bytes(buffer) == data[5_000:6_000]
    assert gets.of("blob") == [(1_000, 9_000)]
    reader.seek(55_000)
    assert reader.read(10) == data[55_000:55_010]
    reader.seek(100)  # outside every range
    assert reader.read(10) == data[100:110]
    reader.seek(2_000)  # a step back to an earlier group: refetched from that item
    assert reader.read(10) == data[2_000:2_010]
    assert reader.seek(0, io.SEEK_END) == len(data)
    assert reader.read(10) == b""
    reader.seek(249_990)  # the end of a range and on into unplanned bytes
    assert reader.read(30) == data[249_990:250_020]
    reader.seek(len(data) - 5)
    assert reader.read(100) == data[-5:]
    reader.seek(299_000)
    assert reader.read() == data[299_000:]
    assert reader.tell() == len(data)
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.read(1)

    # Objects without planned ranges (such as .metadata) are read sequentially.
    other = client.get_object(s3.bucket, "other", reader_constructor=constructor)
    assert isinstance(other, SequentialS3Reader)
    constructor.clear_file_ranges()
    assert isinstance(client.get_object(s3.bucket, "blob", reader_constructor=constructor), SequentialS3Reader)


def test_dcp_optimized_arguments():
    with pytest.raises(ValueError, match="max_gap_size"):
        S3ReaderConstructor.dcp_optimized(max_gap_size=-1)
    with pytest.raises(ValueError, match="max_gap_size"):
        S3ReaderConstructor.dcp_optimized(max_gap_size=float("nan"))
    with pytest.raises(ValueError, match="max_gap_size"):
        S3ReaderConstructor.dcp_optimized(max_gap_size="1")
    # The original documents float("inf"): every range of a file in one request.
    assert S3ReaderConstructor.dcp_optimized(max_gap_size=float("inf")).max_gap_size == float("inf")
    assert [(g.start, g.end) for g in coalesce_ranges([(0, 1), (10**12, 10**12 + 1)], float("inf"))] == [
        (0, 10**12 + 1)
    ]
    with pytest.raises(ValueError, match="invalid byte range"):
        coalesce_ranges([(10, 5)], 0)
    with pytest.raises(TypeError):
        S3ReaderConstructor.dcp_optimized().set_file_ranges([(0, 1)])
    groups = coalesce_ranges([ItemRange(0, 10), (10, 20), (25, 30), (100, 110), (5, 8), (40, 40)], 5)
    assert [(g.start, g.end, len(g.item_ranges)) for g in groups] == [(0, 30, 3), (100, 110, 1)]
    with pytest.raises(ValueError):
        BinaryPrefixStrategy(min_prefix_length=0)
    with pytest.raises(ValueError):
        HexPrefixStrategy(epoch_num="1")
    with pytest.raises(ValueError):
        RoundRobinPrefixStrategy([])
    assert HexPrefixStrategy(prefix_count=32)(26) == "a100000000/__26_"
    assert BinaryPrefixStrategy(prefix_count=4, min_prefix_len=3)(2) == "010/__2_"
    assert BinaryPrefixStrategy(prefix_count=2)(5) == "1000000000/__5_"


def test_optional_extras_fail_with_an_install_hint():
    """Without lightning, or a torch without distributed checkpoint, the subpackages say what to
    install, and the rest of the package still imports."""
    code = (
        "import sys\n"
        "sys.modules['lightning'] = None\n"
        "sys.modules['torch.distributed.checkpoint'] = None\n"
        "import s3torchconnector\n"
        "from s3torchconnector import S3Checkpoint\n"
        "for name in ('lightning', 'dcp'):\n"
        "    try:\n"
        "        __import__('s3torchconnector.' + name)\n"
        "    except ImportError as error:\n"
        "        print(name, error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("lightning ") and 'pip install "s3torchconnector[lightning]"' in lines[0]
    assert lines[1].startswith("dcp ") and "s3torchconnector[dcp]" in lines[1]


# ---- two ranks ----

WORLD_SIZE = 2


def _rank_main(rank: int, endpoint: str, bucket: str, init_file: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE, timeout=timedelta(seconds=60)
    )
    try:
        for name, (factory, _) in STRATEGIES.items():
            _save_and_load_round_trip(f"s3://{bucket}/{name}", endpoint, rank=rank, prefix_strategy=factory())
            dist.barrier()

        model, optimizer = model_and_optimizer(0)
        state = {"model": model.state_dict(), "optim": optimizer.state_dict()}
        dcp.async_save(
            state, storage_writer=S3StorageWriter(REGION, f"s3://{bucket}/async", endpoint=endpoint)
        ).result()
        fresh, _ = model_and_optimizer(1)
        target = {"model": fresh.state_dict()}
        dcp.load(target, storage_reader=S3StorageReader(REGION, f"s3://{bucket}/async", endpoint=endpoint))
        assert_nested_equal(model.state_dict(), target["model"])
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_rank_bucket(s3_endpoint, tmp_path_factory):
    """One run of two gloo ranks (spawned processes) saving and loading with every strategy."""
    import boto3

    bucket = f"test-{uuid.uuid4().hex[:16]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    client.create_bucket(Bucket=bucket)
    init_file = str(tmp_path_factory.mktemp("pg") / "init")
    mp.spawn(_rank_main, args=(s3_endpoint, bucket, init_file), nprocs=WORLD_SIZE, join=True)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_two_ranks_prefix_strategy_layout(two_rank_bucket, name):
    _, prefix_of = STRATEGIES[name]
    keys = sorted(k for k in two_rank_bucket if k.startswith(f"{name}/"))
    expected = [f"{name}/.metadata"] + [f"{name}/{prefix_of(r, WORLD_SIZE)}0.distcp" for r in range(WORLD_SIZE)]
    assert keys == sorted(expected)


def test_two_ranks_async_save(two_rank_bucket):
    assert sorted(k for k in two_rank_bucket if k.startswith("async/")) == [
        "async/.metadata",
        "async/__0_0.distcp",
        "async/__1_0.distcp",
    ]
