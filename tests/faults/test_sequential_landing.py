"""The sequential reader's reads of pieces: each returns once its own bytes are in, while the rest of
the object lands in the background; an index at the tail comes by its own GET. Observed at the proxy,
with a part of the download held back."""

import gc
import hashlib
import io
import threading

import torch

from s3torchconnector import S3Checkpoint, S3ClientConfig, S3ReaderConstructor
from s3torchconnector.s3reader.sequential import TAIL_BYTES

from .proxy import forward
from .test_faults import MIB, client_for, payload, ranged_get_of, returns

PART = 4 * MIB  # whole-object downloads come in 4 MiB parts
SIZE = 6 * PART + 123
HELD_PART_START = 4 * PART  # the fifth part: neither the first, nor the tail's


def hold_part(proxy, s3, key, start=HELD_PART_START):
    """Holds the GET of the part that starts at ``start`` until the returned event is set."""
    release = threading.Event()
    is_get = ranged_get_of(s3.bucket, key)
    rule = proxy.add(
        lambda r: is_get(r) and r.range_start == start,
        forward(before=lambda _request: release.wait(60)),
        limit=1,
    )
    return release, rule


def sequential_reader(client, s3, key):
    return client.get_object(s3.bucket, key, reader_constructor=S3ReaderConstructor.sequential())


def test_reads_return_while_a_later_part_is_still_on_its_way(s3, proxy):
    data = payload(SIZE, seed=50)
    s3.put("obj", data)
    release, rule = hold_part(proxy, s3, "obj")
    release_last, _ = hold_part(proxy, s3, "obj", start=6 * PART)  # so the tail cannot land with the rest
    reader = sequential_reader(client_for(proxy, s3.region), s3, "obj")
    try:
        assert returns(lambda: reader.read(1000), seconds=20) == data[:1000]
        reader.seek(-100, io.SEEK_END)
        assert returns(lambda: reader.read(), seconds=20) == data[-100:]  # the tail, by its own GET
        reader.seek(PART + 7)
        assert returns(lambda: reader.read(PART), seconds=20) == data[PART + 7 : 2 * PART + 7]
        assert rule.fired == 1 and not release.is_set(), "the fifth part was not held while the others were read"
    finally:
        release.set()
        release_last.set()
    reader.seek(0)
    assert reader.read() == data  # all of it, once the held parts came
    tail_gets = proxy.requests(lambda r: ranged_get_of(s3.bucket, "obj")(r) and r.range_start == SIZE - TAIL_BYTES)
    assert len(tail_gets) == 1


def test_torch_load_gets_its_index_from_the_tail_and_the_tensors_right(s3, proxy):
    state = {f"layer{i}": torch.randn(1024, 1024) for i in range(6)}  # 24 MiB of tensors
    checkpoint = S3Checkpoint(region=s3.region, endpoint=proxy.url)
    with checkpoint.writer(s3.uri("model.pt")) as writer:
        torch.save(state, writer)
    size = len(s3.get("model.pt"))
    # The last part (from 24 MiB) is held until the tail's own GET arrives: the index at the tail
    # cannot have landed with the download first, and a load that waited for it would wait 30 s.
    is_get = ranged_get_of(s3.bucket, "model.pt")
    is_tail_get = lambda r: is_get(r) and r.range_start == size - TAIL_BYTES
    held = proxy.add(
        lambda r: is_get(r) and r.range_start == 6 * PART,
        forward(before=lambda _request: proxy.wait_for(is_tail_get, 1, 30)),
        limit=1,
    )
    with checkpoint.reader(s3.uri("model.pt")) as reader:
        loaded = returns(lambda: torch.load(reader, weights_only=True))
    assert held.fired == 1

    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in state.items())
    gets = [entry.request for entry in proxy.requests(ranged_get_of(s3.bucket, "model.pt"))]
    assert [r.range_start for r in gets].count(size - TAIL_BYTES) == 1, [r.range for r in gets]


def test_close_or_drop_while_landing_returns_at_once_and_leaves_nothing_running(s3, proxy):
    data = payload(SIZE, seed=51)
    s3.put("obj", data)
    release, _ = hold_part(proxy, s3, "obj")
    client = client_for(proxy, s3.region)
    try:
        closed = sequential_reader(client, s3, "obj")
        assert closed.read(10) == data[:10]
        returns(closed.close, seconds=20)
        dropped = sequential_reader(client, s3, "obj")
        assert dropped.read(10) == data[:10]
        del dropped
        returns(gc.collect, seconds=20)
    finally:
        release.set()
    # The client goes on working: a fresh read of the whole object.
    reader = sequential_reader(client, s3, "obj")
    assert hashlib.sha256(reader.read()).digest() == hashlib.sha256(data).digest()


def test_mixed_reads_seeks_and_readinto_match_the_object(s3):
    data = payload(SIZE, seed=52)
    s3.put("obj", data)
    client = client_for_moto(s3)
    reader = sequential_reader(client, s3, "obj")
    buffer = bytearray(3 * MIB)
    reader.seek(SIZE - 50)
    assert reader.read(1000) == data[-50:]  # clamped at the end
    reader.seek(2 * PART - 10)
    assert reader.readinto(buffer) == len(buffer) and buffer == data[2 * PART - 10 : 2 * PART - 10 + 3 * MIB]
    assert reader.tell() == 2 * PART - 10 + 3 * MIB
    assert reader.read() == data[2 * PART - 10 + 3 * MIB :]  # the rest, from the middle
    assert reader.read(5) == b"" and reader.readinto(buffer) == 0
    reader.seek(0)
    whole = reader.read()
    assert whole == data and isinstance(whole, bytes)


def client_for_moto(s3):
    from s3torchconnector._s3client import S3Client

    return S3Client(s3.region, endpoint=s3.endpoint, s3client_config=S3ClientConfig())
