"""Tests written for mutants that survived tests/mutation/run.py: each pins a behaviour no other test
checked (the mutant it kills is named in the test's docstring)."""

import pytest

from s3torchconnector import S3IterableDataset, S3ReaderConstructor
from s3torchconnector._s3bucket_key_data import S3BucketKeyData
from s3torchconnector._s3client import MockS3Client
from s3torchconnector._s3client.list_object_stream import ListObjectStream
from s3torchconnector._s3client.object_info import (
    HeadObjectResult,
    ObjectInfo,
    RestoreStatus,
    restore_status_from_header,
)

REGION = "us-east-1"
BUCKET = "test-bucket"


@pytest.fixture
def client() -> MockS3Client:
    client = MockS3Client(REGION, BUCKET)
    for i in range(5):
        client.add_object(f"k{i}", b"x" * (i + 1))
    return client


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


def test_restore_status_keeps_what_it_is_given():
    """RestoreStatus.__init__: both fields, and no expiry unless given."""
    done = RestoreStatus(False, 1_700_000_000)
    assert (done.in_progress, done.expiry) == (False, 1_700_000_000)
    running = RestoreStatus(True)
    assert (running.in_progress, running.expiry) == (True, None)
    assert repr(done) == "RestoreStatus(in_progress=False, expiry=1700000000)"


def test_restore_status_is_read_from_the_x_amz_restore_header():
    """restore_status_from_header: S3's two forms, and None for an object never restored."""
    assert restore_status_from_header("") is None
    running = restore_status_from_header('ongoing-request="true"')
    assert (running.in_progress, running.expiry) == (True, None)
    done = restore_status_from_header('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"')
    assert (done.in_progress, done.expiry) == (False, 1356048000)


def test_head_object_result_repr_names_its_etag_and_size():
    """HeadObjectResult.__repr__ (ObjectInfo's own repr adds the key)."""
    assert repr(HeadObjectResult('"e1"', 12)) == "HeadObjectResult(etag='\"e1\"', size=12)"
    assert repr(ObjectInfo("a/b", '"e1"', 12)) == "ObjectInfo(key='a/b', etag='\"e1\"', size=12)"


def test_dcp_optimized_constructor_repr_names_its_gap_size():
    """DCPOptimizedConstructor.__repr__."""
    assert repr(S3ReaderConstructor.dcp_optimized(max_gap_size=123)) == "DCPOptimizedConstructor(max_gap_size=123)"


def test_iterable_dataset_transforms_one_object_on_request(client):
    """S3IterableDataset._get_transformed_object (the original's hook for one object): the
    transform of a reader of that object."""
    dataset = S3IterableDataset.from_objects(
        [f"s3://{BUCKET}/k3"], region=REGION, transform=lambda reader: (reader.key, reader.read())
    )
    dataset._client = client
    assert dataset._get_transformed_object(S3BucketKeyData(BUCKET, "k3")) == ("k3", b"xxxx")


def test_dcp_file_system_ls_lists_exactly_the_folder():
    """S3FileSystem.ls: a path with or without its trailing slash lists that folder only, not a
    sibling that shares its name as a prefix, nor the rest of the bucket."""
    from s3torchconnector.dcp import S3FileSystem

    client = MockS3Client(REGION, BUCKET)
    for key in ("ckpt/a", "ckpt/sub/b", "ckpt2/c", "other/d"):
        client.add_object(key, b"x")
    fs = S3FileSystem(REGION, s3_client=client)
    expected = [f"s3://{BUCKET}/ckpt/a", f"s3://{BUCKET}/ckpt/sub/b"]
    assert fs.ls(f"s3://{BUCKET}/ckpt") == expected
    assert fs.ls(f"s3://{BUCKET}/ckpt/") == expected
    assert len(fs.ls(f"s3://{BUCKET}")) == 4


class _Upload:
    """An upload stream that only counts what happens to it."""

    def __init__(self):
        self.data, self.closed = b"", False

    def write(self, data):
        self.data += bytes(data)
        return len(data)

    def close(self):
        self.closed = True

    def abort(self):
        pass


def test_a_write_after_close_names_the_object_or_the_upload(client):
    """S3Writer._describe: the error names s3://bucket/key when the writer knows them, else "upload"."""
    writer = client.put_object(BUCKET, "out/model.pt")
    writer.write(b"abc")
    writer.close()
    with pytest.raises(ValueError, match=r"^write to a closed S3Writer \(s3://test-bucket/out/model\.pt\)$"):
        writer.write(b"more")

    from s3torchconnector import S3Writer

    anonymous = S3Writer(_Upload())
    anonymous.close()
    with pytest.raises(ValueError, match=r"^write to a closed S3Writer \(upload\)$"):
        anonymous.write(b"more")


def test_last_modified_of_both_formats_and_of_none():
    """_epoch_seconds: ISO 8601 (listings) and RFC 1123 (HEAD) give the same second; no timestamp,
    or one that does not parse, gives 0 (the original's value for "unknown")."""
    assert ObjectInfo("k", '"e"', 1, "2026-11-23T23:14:27.000Z").last_modified == 1795475667
    assert HeadObjectResult('"e"', 1, "Mon, 23 Nov 2026 23:14:27 GMT").last_modified == 1795475667
    assert HeadObjectResult('"e"', 1).last_modified == 0
    assert HeadObjectResult('"e"', 1, "not a date").last_modified == 0


def test_a_manifest_that_cannot_be_read_keeps_the_errors_attributes(client):
    """manifest._with_context: the clearer error still carries code, status, bucket, key, request id
    and operation, for code that handles S3Exception by its attributes."""
    from s3torchconnector import S3Exception, S3MapDataset

    dataset = S3MapDataset.from_manifest(f"s3://{BUCKET}/missing.jsonl", region=REGION)
    dataset._client = client
    with pytest.raises(S3Exception) as raised:
        len(dataset)
    error = raised.value
    assert str(error).startswith(f"cannot read the manifest s3://{BUCKET}/missing.jsonl: NoSuchKey")
    assert (error.code, error.status, error.bucket, error.key, error.operation) == (
        "NoSuchKey",
        404,
        BUCKET,
        "missing.jsonl",
        "GetObject",
    )
    assert error.request_id == ""  # the in-memory client sends none; the attribute is still there


def test_set_epoch_after_load_state_dict_still_resumes(client):
    """S3IterableDataset.set_epoch keeps a loaded, not yet resumed position: the usual loop calls
    set_epoch at the top of each epoch, after restoring the checkpoint."""
    uris = [f"s3://{BUCKET}/k{i}" for i in range(5)]

    def dataset():
        made = S3IterableDataset.from_objects(uris, region=REGION, transform=lambda reader: reader.key)
        made._client = client
        return made

    first = dataset()
    first.set_epoch(3)
    iterator = iter(first)
    assert [next(iterator), next(iterator)] == ["k0", "k1"]
    saved = iterator.state_dict()

    second = dataset()
    second.load_state_dict(saved)
    second.set_epoch(3)
    assert list(second) == ["k2", "k3", "k4"]


def test_a_retried_delete_of_a_rename_is_logged_with_the_object_and_the_error(client, monkeypatch, caplog):
    """S3FileSystem.rename: each failed delete before the last is a warning that names the object
    and the error (an operator's only sign that the old name nearly lingered)."""
    import logging

    from s3torchconnector import S3Exception
    from s3torchconnector.dcp import S3FileSystem

    delete = client.delete_object
    failures = [S3Exception("InternalError: try again")]

    def flaky_delete(bucket, key):
        if failures:
            raise failures.pop()
        return delete(bucket, key)

    monkeypatch.setattr(client, "delete_object", flaky_delete)
    with caplog.at_level(logging.WARNING, logger="s3torchconnector"):
        S3FileSystem(REGION, s3_client=client).rename(f"s3://{BUCKET}/k1", f"s3://{BUCKET}/renamed")
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [f"rename: deleting s3://{BUCKET}/k1 failed (InternalError: try again), retrying"]
    assert [info.key for page in client.list_objects(BUCKET) for info in page.object_info] == [
        "k0",
        "k2",
        "k3",
        "k4",
        "renamed",
    ]


@pytest.mark.parametrize(
    "prefixes, message",
    [
        ([], "user_prefixes must be a non-empty list of strings"),
        ("a", "user_prefixes must be a non-empty list of strings"),
        (["a", ""], "user_prefixes must be non-empty strings, got ['a', '']"),
        (["a", 7], "user_prefixes must be non-empty strings, got ['a', 7]"),
    ],
)
def test_round_robin_prefixes_are_refused_with_a_message_that_says_why(prefixes, message):
    """RoundRobinPrefixStrategy.__init__: every bad list is refused, and the message names the fault."""
    from s3torchconnector.dcp import RoundRobinPrefixStrategy

    with pytest.raises(ValueError) as raised:
        RoundRobinPrefixStrategy(prefixes)
    assert str(raised.value) == message


@pytest.mark.parametrize("epoch_num", [True, 1.0, "1"])
def test_round_robin_refuses_an_epoch_that_is_not_an_int(epoch_num):
    """RoundRobinPrefixStrategy.__init__ checks the epoch it was given."""
    from s3torchconnector.dcp import RoundRobinPrefixStrategy

    with pytest.raises(ValueError, match="epoch_num must be None or an int"):
        RoundRobinPrefixStrategy(["a", "b"], epoch_num=epoch_num)
    assert RoundRobinPrefixStrategy(["a", "b"], epoch_num=3).generate_prefix(3) == "b/epoch_3/__3_"


def test_a_second_member_of_the_same_kind_in_a_sample_is_named():
    """tar_samples: two members that would fill one sample field is an error naming the shard, the
    member, the field, the sample and the byte offset."""
    import io
    import tarfile

    from s3torchconnector._tar_samples import tar_samples

    shard = io.BytesIO()
    with tarfile.open(fileobj=shard, mode="w") as tar:
        for name in ("s/0001.txt", "s/0001.cls", "s/0001.TXT"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    shard.seek(0)
    with pytest.raises(ValueError) as raised:
        list(tar_samples(shard, "s3://b/shard.tar"))
    assert str(raised.value) == (
        "s3://b/shard.tar: s/0001.TXT is a second 'txt' member of the sample 's/0001' (at byte 2048)"
    )


def test_the_writers_file_surface(client):
    """S3Writer: writable until closed, never readable or seekable, and `closed` a bool."""
    writer = client.put_object(BUCKET, "surface")
    assert (writer.writable(), writer.readable(), writer.seekable(), writer.closed) == (True, False, False, False)
    writer.close()
    assert (writer.writable(), writer.closed) == (False, True)


def test_the_writers_refusals_say_what_to_do(client):
    """S3Writer.write: a str and a non-contiguous buffer are refused with messages that say why."""
    import numpy

    writer = client.put_object(BUCKET, "refusals")
    with pytest.raises(TypeError) as raised:
        writer.write("text")
    assert str(raised.value) == "S3Writer.write takes bytes-like objects, not str; encode it first"
    with pytest.raises(ValueError, match=r"^S3Writer\.write needs a contiguous buffer: "):
        writer.write(memoryview(numpy.arange(10, dtype=numpy.uint8))[::2])
    writer.abort()


def test_dropping_a_writer_cancels_its_upload_even_if_its_stream_lives_on(client):
    """S3Writer.__del__: a writer dropped unclosed aborts its upload, so a stream someone still holds
    (the writer's public `stream`) cannot complete it afterwards."""
    import gc

    writer = client.put_object(BUCKET, "dropped")
    writer.write(b"half")
    stream = writer.stream
    del writer
    gc.collect()
    try:
        stream.close()
    except Exception:
        pass
    assert "dropped" not in [info.key for page in client.list_objects(BUCKET) for info in page.object_info]


def test_a_shuffle_buffer_of_two_already_mixes_a_shards_samples():
    """shuffled_samples: any buffer larger than one reorders (one, or none, keeps the order)."""
    from s3torchconnector._epoch_order import shuffled_samples

    def order(size, position):
        return list(shuffled_samples(range(30), size, seed=0, epoch=0, position=position))

    assert order(0, 0) == order(1, 0) == list(range(30))
    mixed = [order(2, position) for position in range(5)]
    assert all(sorted(m) == list(range(30)) for m in mixed)
    assert any(m != list(range(30)) for m in mixed)


def _two_member_shard() -> bytes:
    import io
    import tarfile

    shard = io.BytesIO()
    with tarfile.open(fileobj=shard, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in ("a/0001.txt", "a/0002.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    return shard.getvalue()


def test_a_shard_cut_short_or_damaged_between_members_says_which():
    """_StrictTarInfo.frombuf: a header cut short and a header that fails its checksum are told apart."""
    import io

    from s3torchconnector._tar_samples import tar_samples

    whole = _two_member_shard()
    with pytest.raises(ValueError, match=r"it ends where a member's header should be: truncated \(at byte"):
        list(tar_samples(io.BytesIO(whole[: 1024 + 100]), "s3://b/cut.tar"))
    damaged = bytearray(whole)
    damaged[1024 + 148 : 1024 + 156] = b"99999999"  # the second header's checksum field
    with pytest.raises(ValueError, match=r"a damaged member header \(invalid header\) \(at byte 1024\)"):
        list(tar_samples(io.BytesIO(bytes(damaged)), "s3://b/damaged.tar"))


def test_a_shards_sample_order_follows_the_seed_the_epoch_and_the_shards_position():
    """shuffled_samples: the same inputs give the same order (a resume can skip what was read), and
    another seed, epoch or listing position gives another order."""
    from s3torchconnector._epoch_order import shuffled_samples

    def order(seed=0, epoch=0, position=0):
        return tuple(shuffled_samples(range(40), 8, seed=seed, epoch=epoch, position=position))

    assert order() == order()
    assert len({order(seed=seed) for seed in range(4)}) == 4
    assert len({order(epoch=epoch) for epoch in range(4)}) == 4
    assert len({order(position=position) for position in range(4)}) == 4


def test_a_map_dataset_uses_the_client_config_and_reader_it_was_given(client):
    """S3MapDataset.__init__ passes s3client_config and reader_constructor on."""
    from s3torchconnector import S3ClientConfig, S3MapDataset
    from s3torchconnector.s3reader import RangedS3Reader

    config = S3ClientConfig(part_size=16 * 1024 * 1024, max_attempts=7)
    dataset = S3MapDataset.from_objects(
        [f"s3://{BUCKET}/k2"],
        region=REGION,
        s3client_config=config,
        reader_constructor=S3ReaderConstructor.range_based(),
    )
    made = dataset._get_client().s3client_config
    assert (made.part_size, made.max_attempts) == (16 * 1024 * 1024, 7)
    dataset._client = client
    reader = dataset[0]
    assert isinstance(reader, RangedS3Reader) and reader.read() == b"xxx"


def test_a_map_dataset_index_that_is_not_an_integer_is_named():
    """S3MapDataset._get_object: the TypeError names the index's type."""
    from s3torchconnector import S3MapDataset

    dataset = S3MapDataset.from_objects([f"s3://{BUCKET}/k0"], region=REGION)
    with pytest.raises(TypeError) as raised:
        dataset["0"]
    assert str(raised.value) == "dataset indices must be integers, got str"


def test_each_dataset_kind_names_itself_and_its_reader_in_the_user_agent():
    """S3MapDataset.__init__ (kind="map") and S3IterableDataset's: S3's request logs tell them apart."""
    from s3torchconnector import S3MapDataset

    uris = [f"s3://{BUCKET}/k0"]
    map_agent = S3MapDataset.from_objects(uris, region=REGION)._get_client().user_agent_prefix
    iterable_agent = (
        S3IterableDataset.from_objects(uris, region=REGION, reader_constructor=S3ReaderConstructor.range_based())
        ._get_client()
        .user_agent_prefix
    )
    assert "md/dataset#map md/reader_type#sequential" in map_agent
    assert "md/dataset#iterable md/reader_type#range_based" in iterable_agent


def test_a_shuffle_buffer_holds_at_most_its_size():
    """_buffer_shuffle (through shuffled_samples): with a buffer of 4, the first sample comes out when
    the 5th is read, and no sample moves earlier by more than 3 places."""
    from s3torchconnector._epoch_order import shuffled_samples

    pulled = []

    def samples():
        for i in range(50):
            pulled.append(i)
            yield i

    out = shuffled_samples(samples(), 4, seed=0, epoch=0, position=0)
    next(out)
    assert len(pulled) == 5
    for seed in range(20):
        order = list(shuffled_samples(range(50), 4, seed=seed, epoch=0, position=0))
        assert sorted(order) == list(range(50))
        assert all(item <= place + 3 for place, item in enumerate(order))


def test_a_shuffle_buffer_of_two_already_mixes_the_objects():
    """shard_positions: shuffle_buffer_size=2 reorders a worker's objects (0 and 1 keep the order)."""
    client = MockS3Client(REGION, BUCKET)
    uris = []
    for i in range(20):
        client.add_object(f"o{i:02d}", b"")
        uris.append(f"s3://{BUCKET}/o{i:02d}")

    def keys(buffer_size, seed):
        dataset = S3IterableDataset.from_objects(
            uris, region=REGION, transform=lambda reader: reader.key, shuffle_buffer_size=buffer_size, seed=seed
        )
        dataset._client = client
        return list(dataset)

    listed = [f"o{i:02d}" for i in range(20)]
    assert keys(0, 0) == keys(1, 0) == listed
    mixed = [keys(2, seed) for seed in range(4)]
    assert all(sorted(m) == listed for m in mixed) and any(m != listed for m in mixed)


def test_a_workers_shuffle_buffer_follows_the_seed_the_epoch_the_run_and_the_layout():
    """shard_positions: the buffer's order changes with the seed and the epoch (as a dataset shows),
    and with the run and the shard layout it serves; the same inputs give the same order."""
    from s3torchconnector._epoch_order import shard_positions

    def order(seed=0, epoch=0, run=0, shards=1):
        return tuple(shard_positions(range(60), 0, shards, buffer_size=6, seed=seed, epoch=epoch, run=run))

    assert order() == order()
    assert len({order(seed=seed) for seed in range(4)}) == 4
    assert len({order(epoch=epoch) for epoch in range(4)}) == 4
    assert len({order(run=run) for run in range(4)}) == 4
    # Shard 0 of 2 and of 3 deal different positions (in increasing order); while both streams still
    # flow through the buffer (their first 10), the patterns it draws for them differ too.
    patterns = {tuple(sorted(range(10), key=o.__getitem__)) for o in (order(shards=2)[:10], order(shards=3)[:10])}
    assert len(patterns) == 2


def test_the_shards_of_one_layout_shuffle_differently():
    """shard_positions: each shard's buffer draws its own order, not the same pattern over other items."""
    from s3torchconnector._epoch_order import shard_positions

    def pattern(shard):
        order = list(shard_positions(range(60), shard, 2, buffer_size=6, seed=0, epoch=0, run=0))[:20]
        return tuple(sorted(range(20), key=order.__getitem__))

    assert pattern(0) != pattern(1)
