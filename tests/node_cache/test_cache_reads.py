"""The node cache in one process: what is served from local disk, what is asked of S3, and that the
bytes are always the object's."""

import logging
import os

import pytest
from samples import key_and_bytes, payload

from s3torchconnector import S3IterableDataset, S3MapDataset, S3ReaderConstructor
from s3torchconnector._cache.entry_format import HEADER_SIZE
from s3torchconnector._s3client import S3ClientConfig

from .helpers import cached_client, disk_bytes, entry_files, gets, heads, part_files

MIB = 1024 * 1024


def put_objects(s3, prefix: str, count: int, size: int) -> dict:
    objects = {f"{prefix}{i:03d}": payload(size + i, seed=i) for i in range(count)}
    for key, data in objects.items():
        s3.put(key, data)
    return objects


def config(cache_dir, max_bytes="64MiB", **more) -> S3ClientConfig:
    return S3ClientConfig(cache_dir=str(cache_dir), cache_max_bytes=max_bytes, **more)


def listed(kind, s3, proxy, prefix: str, cache_dir):
    """A dataset of ``kind`` over a prefix, through the proxy and the cache, yielding (key, bytes)."""
    return kind.from_prefix(
        s3.uri(prefix), region=s3.region, endpoint=proxy.url, transform=key_and_bytes, s3client_config=config(cache_dir)
    )


def test_second_epoch_of_a_listing_sends_no_get(s3, proxy, cache_dir):
    objects = put_objects(s3, "train/", 12, 30_000)
    dataset = listed(S3IterableDataset, s3, proxy, "train/", cache_dir)
    assert dict(dataset) == objects
    assert gets(proxy) == len(objects)
    assert dict(dataset) == objects  # the listing gave each ETag: served without asking
    assert gets(proxy) == len(objects)
    assert heads(proxy) == 0
    counters = dataset._get_client().metrics()["cache"]
    assert counters["misses"] == len(objects) and counters["hits"] == len(objects)
    assert counters["bytes_from_cache"] == sum(map(len, objects.values()))
    assert len(entry_files(cache_dir)) == len(objects) and not part_files(cache_dir)


def test_map_dataset_and_a_second_client_share_the_entries(s3, proxy, cache_dir):
    objects = put_objects(s3, "map/", 6, 10_000)
    dataset = listed(S3MapDataset, s3, proxy, "map/", cache_dir)
    assert dict(dataset[i] for i in range(len(dataset))) == objects
    again = listed(S3MapDataset, s3, proxy, "map/", cache_dir)
    assert dict(again[i] for i in range(len(again))) == objects
    assert gets(proxy) == len(objects)


def test_a_read_without_a_known_etag_revalidates_with_one_head(s3, proxy, cache_dir):
    data = payload(3 * MIB + 5, seed=1)
    s3.put("ckpt.pt", data)
    client = cached_client(proxy.url, cache_dir)
    assert client.get_object(s3.bucket, "ckpt.pt").read() == data
    assert (gets(proxy), heads(proxy)) == (1, 0)  # no entry yet: nothing to revalidate
    reader = client.get_object(s3.bucket, "ckpt.pt")
    assert reader.read() == data
    assert (gets(proxy), heads(proxy)) == (1, 1)
    reader.seek(-100, os.SEEK_END)  # the size comes from that same HEAD
    assert reader.read() == data[-100:]
    assert heads(proxy) == 1
    assert client.metrics()["cache"]["revalidations"] == 1


def test_an_overwritten_object_is_read_anew(s3, proxy, cache_dir):
    s3.put("data/a", b"first version")
    dataset = listed(S3IterableDataset, s3, proxy, "data/", cache_dir)
    assert dict(dataset) == {"data/a": b"first version"}
    s3.put("data/a", b"second, longer version")
    assert dict(dataset) == {"data/a": b"second, longer version"}  # the next epoch lists the new ETag
    client = cached_client(proxy.url, cache_dir)
    s3.put("data/a", b"third")
    assert client.get_object(s3.bucket, "data/a").read() == b"third"  # the HEAD finds the new version
    assert gets(proxy) == 3
    assert len(entry_files(cache_dir)) == 1  # one entry per object: the newest replaced the others


@pytest.mark.parametrize(
    "constructor",
    [S3ReaderConstructor.range_based(), S3ReaderConstructor.dcp_optimized()],
    ids=["range_based", "dcp_optimized"],
)
def test_range_reads_are_served_from_a_cached_object(s3, proxy, cache_dir, constructor):
    data = payload(5 * MIB + 3, seed=2)
    s3.put("weights.bin", data)
    client = cached_client(proxy.url, cache_dir)
    ranged = client.get_object(s3.bucket, "weights.bin", reader_constructor=S3ReaderConstructor.range_based())
    ranged.seek(MIB)
    assert ranged.read(1000) == data[MIB : MIB + 1000]
    assert gets(proxy) == 1 and not entry_files(cache_dir)  # a byte range of an object not cached: not kept
    assert client.get_object(s3.bucket, "weights.bin").read() == data  # a whole read keeps it
    assert len(entry_files(cache_dir)) == 1
    before = gets(proxy)
    reader = client.get_object(s3.bucket, "weights.bin", reader_constructor=constructor)
    for start, length in ((0, 10), (MIB - 5, 2 * MIB + 11), (5 * MIB - 1, 100)):
        reader.seek(start)
        assert reader.read(length) == data[start : start + length]
    assert gets(proxy) == before


def test_tar_shards_and_manifests_go_through_the_cache(s3, proxy, cache_dir):
    from s3torchconnector import shards
    from s3torchconnector.manifest import write_manifest

    objects = {f"raw/{i:03d}.bin": payload(2_000 + i, seed=i) for i in range(8)}
    for key, data in objects.items():
        s3.put(key, data)
    # Packed and listed straight at the server, without the cache: only the reads below count.
    shards.pack(s3.uri("raw/"), s3.uri("shards/"), region=s3.region, endpoint=s3.endpoint, max_count=4)
    write_manifest(s3.uri("raw/"), s3.uri("m.jsonl"), region=s3.region, endpoint=s3.endpoint)
    for _ in range(2):
        shard_set = S3IterableDataset.from_prefix(
            s3.uri("shards/"),
            region=s3.region,
            endpoint=proxy.url,
            shard_format="tar",
            s3client_config=config(cache_dir),
        )
        assert {"raw/" + sample["__key__"] + ".bin": sample["bin"] for sample in shard_set} == objects
        listed = S3MapDataset.from_manifest(
            s3.uri("m.jsonl"),
            region=s3.region,
            endpoint=proxy.url,
            transform=key_and_bytes,
            s3client_config=config(cache_dir),
        )
        assert dict(listed[i] for i in range(len(listed))) == objects
    # The first pass: 2 shards, the manifest, 8 objects; each pass asks for the manifest's version
    # (HEAD), which names the node's index of it, built by the first pass.
    assert gets(proxy) == 2 + 1 + len(objects)
    assert heads(proxy) == 2


def test_damaged_entry_bytes_are_dropped_and_fetched_again(s3, proxy, cache_dir, caplog):
    data = payload(2 * MIB + 100, seed=3)
    s3.put("blob", data)
    client = cached_client(proxy.url, cache_dir)
    assert client.get_object(s3.bucket, "blob").read() == data
    (entry,) = entry_files(cache_dir)
    with open(entry, "r+b") as file:  # one byte of the second block
        file.seek(HEADER_SIZE + MIB + 7)
        file.write(bytes([data[MIB + 7] ^ 0xFF]))
    with caplog.at_level(logging.WARNING, logger="s3torchconnector"):
        reader = client.get_object(s3.bucket, "blob", reader_constructor=S3ReaderConstructor.range_based())
        assert reader.read() == data  # the first block from disk, the rest from S3 at the same ETag
    assert "no longer matched its checksums" in caplog.text
    assert not entry_files(cache_dir)
    assert client.get_object(s3.bucket, "blob").read() == data  # fetched again, and kept again
    assert gets(proxy) == 3 and len(entry_files(cache_dir)) == 1


@pytest.mark.parametrize("damage", ["header", "truncated", "checksums"])
def test_damaged_entries_of_every_kind_are_never_served(s3, proxy, cache_dir, damage):
    data = payload(100_000, seed=4)
    s3.put("sample", data)
    client = cached_client(proxy.url, cache_dir)
    assert client.get_object(s3.bucket, "sample").read() == data
    (entry,) = entry_files(cache_dir)
    raw = bytearray(entry.read_bytes())
    if damage == "header":
        raw[20] ^= 0x01
    elif damage == "truncated":
        del raw[-10:]
    else:
        raw[-1] ^= 0x01
    entry.write_bytes(bytes(raw))
    assert client.get_object(s3.bucket, "sample").read() == data
    assert gets(proxy) == 2


def test_the_bound_holds_while_reading(s3, proxy, cache_dir):
    objects = put_objects(s3, "many/", 30, 200_000)
    bound = 1_000_000  # room for four of them
    client = cached_client(proxy.url, cache_dir, max_bytes=bound)
    for _ in range(2):
        for key, data in objects.items():
            assert client.get_object(s3.bucket, key).read() == data
            assert disk_bytes(entry_files(cache_dir)) <= bound
    assert 0 < len(entry_files(cache_dir)) <= 4
    assert client.metrics()["cache"]["evictions"] >= len(objects) * 2 - 4


def test_least_recently_used_entries_go_first(s3, proxy, cache_dir):
    objects = put_objects(s3, "lru/", 4, 300_000)
    keys = list(objects)
    client = cached_client(proxy.url, cache_dir, max_bytes=4 * 320_000)
    for key in keys[:3]:
        client.get_object(s3.bucket, key).read()
    os.utime(entry_files(cache_dir)[0], (1, 1))  # make sure times differ on coarse clocks
    for entry in entry_files(cache_dir):
        os.utime(entry, (1000, 1000))
    client.get_object(s3.bucket, keys[0]).read()  # used again: now the most recent
    client.get_object(s3.bucket, keys[3]).read()  # needs room
    before = gets(proxy)
    client.get_object(s3.bucket, keys[0]).read()
    assert gets(proxy) == before  # still cached; the eviction took keys[1] or keys[2]


def test_an_entry_being_read_is_not_evicted(s3, proxy, cache_dir):
    objects = put_objects(s3, "held/", 3, 400_000)
    keys = list(objects)
    client = cached_client(proxy.url, cache_dir, max_bytes=900_000)  # room for two
    held = client._stream_object(s3.bucket, keys[0])  # as a tar shard is read: streamed from its entry
    start = bytearray(10)
    assert held.readinto(start) == 10  # the entry stays open, locked shared, until the stream closes
    for key in keys[1:]:
        client.get_object(s3.bucket, key).read()
    assert bytes(start) + held.read_all_bytes() == objects[keys[0]]
    held.close()
    assert gets(proxy) == 3
    before = gets(proxy)
    assert client.get_object(s3.bucket, keys[0]).read() == objects[keys[0]]
    assert gets(proxy) == before


def test_an_object_larger_than_the_cache_is_read_from_s3(s3, proxy, cache_dir):
    data = payload(2 * MIB, seed=5)
    s3.put("huge", data)
    client = cached_client(proxy.url, cache_dir, max_bytes=MIB)
    for _ in range(2):
        assert client.get_object(s3.bucket, "huge").read() == data
    assert gets(proxy) == 2 and not entry_files(cache_dir) and not part_files(cache_dir)


def test_a_folder_that_cannot_be_made_falls_back_to_s3(s3, proxy, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    client = cached_client(proxy.url, blocker / "cache")
    s3.put("x", b"bytes")
    with caplog.at_level(logging.WARNING, logger="s3torchconnector"):
        for _ in range(3):
            assert client.get_object(s3.bucket, "x").read() == b"bytes"
    assert caplog.text.count("cannot be used") == 1
    assert gets(proxy) == 3


def test_a_full_disk_falls_back_to_s3_and_leaves_nothing(s3, proxy, small_filesystem, caplog):
    data = payload(3 * MIB, seed=6)
    s3.put("big", data)
    client = cached_client(proxy.url, small_filesystem, max_bytes="1GiB")  # the bound is not what stops it
    with caplog.at_level(logging.WARNING, logger="s3torchconnector"):
        for _ in range(2):
            assert client.get_object(s3.bucket, "big").read() == data
    assert "the disk is full" in caplog.text
    assert client.metrics()["cache"]["fallbacks"] == 2
    assert not entry_files(small_filesystem) and not part_files(small_filesystem)
    small = payload(1000, seed=7)
    s3.put("small", small)
    for _ in range(2):
        assert client.get_object(s3.bucket, "small").read() == small  # what fits is still cached
    assert gets(proxy, "small") == 1


def test_settings_come_from_the_environment(s3, proxy, tmp_path, monkeypatch):
    from s3torchconnector._s3client import S3Client

    monkeypatch.setenv("S3_TORCH_CONNECTOR_CACHE_DIR", str(tmp_path / "env-cache"))
    monkeypatch.setenv("S3_TORCH_CONNECTOR_CACHE_MAX_BYTES", "2MiB")
    s3.put("k", b"v" * 1000)
    client = S3Client(s3.region, endpoint=proxy.url)
    for _ in range(2):
        assert client.get_object(s3.bucket, "k").read() == b"v" * 1000
    assert gets(proxy) == 1
    assert client._cache_settings.max_bytes == 2 * MIB
    monkeypatch.setenv("S3_TORCH_CONNECTOR_CACHE_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match="S3_TORCH_CONNECTOR_CACHE_MAX_BYTES must be a size"):
        S3Client(s3.region, endpoint=proxy.url)


def test_checkpoint_loads_through_the_cache(s3, proxy, cache_dir):
    import torch
    import torch.distributed.checkpoint as dcp

    from s3torchconnector import S3Checkpoint
    from s3torchconnector.dcp import S3StorageReader, S3StorageWriter
    from s3torchconnector.lightning import S3LightningCheckpoint

    state = {"weights": torch.arange(300_000, dtype=torch.float32), "step": 7}
    checkpoint = S3Checkpoint(s3.region, endpoint=proxy.url, s3client_config=config(cache_dir))
    with checkpoint.writer(s3.uri("model.pt")) as writer:
        torch.save(state, writer)
    for _ in range(2):
        with checkpoint.reader(s3.uri("model.pt")) as reader:
            loaded = torch.load(reader, weights_only=True)
        assert torch.equal(loaded["weights"], state["weights"]) and loaded["step"] == 7
    assert gets(proxy, "model.pt") == 1 and heads(proxy) == 1  # the second load: one HEAD

    plugin = S3LightningCheckpoint(s3.region, s3client_config=config(cache_dir), endpoint=proxy.url)
    plugin.save_checkpoint(state, s3.uri("lightning.ckpt"))
    for _ in range(2):
        assert torch.equal(plugin.load_checkpoint(s3.uri("lightning.ckpt"))["weights"], state["weights"])
    assert gets(proxy, "lightning.ckpt") == 1

    # DCP reads byte ranges: correct through the cache, served from it once an entry is there.
    cached = dict(endpoint=proxy.url, s3client_config=config(cache_dir))
    dcp.save(state, storage_writer=S3StorageWriter(s3.region, s3.uri("dcp/"), **cached))
    for _ in range(2):
        target = {"weights": torch.zeros(300_000), "step": 0}
        dcp.load(target, storage_reader=S3StorageReader(s3.region, s3.uri("dcp/"), **cached))
        assert torch.equal(target["weights"], state["weights"]) and target["step"] == 7
