"""The sequential reader's reads of pieces: each returns once its own bytes are in, while the rest of
the object comes in the background; an index at the tail comes by its own GET. A large object is read
front to back through one GET (each large read copied once to the caller), unless its download was started
whole by prefetch(). Observed at the proxy, with a part of the download held back."""

import gc
import hashlib
import io
import threading

import pytest
import torch

from s3torchconnector import S3Checkpoint, S3ClientConfig, S3ReaderConstructor
from s3torchconnector.s3reader.forward_stream import SKIP_BY_READING, WINDOW_FILL
from s3torchconnector.s3reader.sequential import TAIL_BYTES

from .proxy import forward
from .test_faults import MIB, client_for, payload, ranged_get_of, returns

PART = 4 * MIB  # the test client's part size (the CRT makes a stream's parts at least 5 MiB); whole downloads' too
SIZE = 6 * PART + 123
HELD_BYTE = 4 * PART + 1  # in a part that is neither the first, nor the tail's


def range_of(request):
    """(first, last) byte of a ranged request."""
    first, last = request.range.removeprefix("bytes=").split("-")
    return int(first), int(last)


def hold_part(proxy, s3, key, byte=HELD_BYTE):
    """Holds the GET of the part that holds ``byte`` (not the tail's own GET) until the returned event
    is set."""
    release = threading.Event()
    is_get = ranged_get_of(s3.bucket, key)
    rule = proxy.add(
        lambda r: is_get(r) and range_of(r)[0] <= byte <= range_of(r)[1] and r.range_start != SIZE - TAIL_BYTES,
        forward(before=lambda _request: release.wait(60)),
        limit=1,
    )
    return release, rule


def sequential_reader(client, s3, key):
    return client.get_object(s3.bucket, key, reader_constructor=S3ReaderConstructor.sequential())


def gets_of(proxy, s3, key):
    return [entry.request for entry in proxy.requests(ranged_get_of(s3.bucket, key))]


@pytest.mark.parametrize("prefetched", [False, True], ids=["front_to_back", "whole_after_prefetch"])
def test_reads_return_while_a_later_part_is_still_on_its_way(s3, proxy, prefetched):
    data = payload(SIZE, seed=50)
    s3.put("obj", data)
    release, rule = hold_part(proxy, s3, "obj")
    release_last, _ = hold_part(proxy, s3, "obj", byte=SIZE - 1)  # so the tail cannot come with the rest
    reader = sequential_reader(client_for(proxy, s3.region), s3, "obj")
    if prefetched:
        reader.prefetch()
    try:
        assert returns(lambda: reader.read(1000), seconds=20) == data[:1000]
        reader.seek(-100, io.SEEK_END)
        assert returns(lambda: reader.read(), seconds=20) == data[-100:]  # the tail, by its own GET
        reader.seek(PART + 7)
        assert returns(lambda: reader.read(PART), seconds=20) == data[PART + 7 : 2 * PART + 7]
        assert proxy.wait_for(rule.match, 1, 20), "the part was never asked for"
        assert rule.fired == 1 and not release.is_set(), "the fifth part was not held while the others were read"
    finally:
        release.set()
        release_last.set()
    reader.seek(0)
    assert reader.read() == data  # all of it, once the held parts came
    tail_gets = [r for r in gets_of(proxy, s3, "obj") if r.range_start == SIZE - TAIL_BYTES]
    assert len(tail_gets) == 1


def test_a_read_back_past_the_window_receives_the_object_whole(s3, proxy):
    data = payload(SIZE, seed=53)
    s3.put("obj", data)
    reader = sequential_reader(client_for(proxy, s3.region), s3, "obj")
    buffer = bytearray(PART)
    assert reader.readinto(buffer) == PART and buffer == data[:PART]  # straight from the stream
    assert reader.read(10) == data[PART : PART + 10]
    reader.seek(PART + 3)  # back, but into what the small read fetched: no new request
    assert reader.read(20) == data[PART + 3 : PART + 23]
    first_parts = lambda: [r for r in gets_of(proxy, s3, "obj") if r.range_start == 0]
    assert len(first_parts()) == 1
    reader.seek(100)  # before it: the object is received whole, and serves every read from then on
    assert reader.read(1000) == data[100:1100]
    assert len(first_parts()) == 2
    reader.seek(3 * PART)
    assert reader.read(PART) == data[3 * PART : 4 * PART]
    reader.seek(0)
    assert reader.read() == data


def test_a_long_jump_forward_starts_a_new_get_where_it_lands(s3, proxy):
    size = 3 * SKIP_BY_READING + 123
    data = payload(size, seed=54)
    s3.put("obj", data)
    reader = sequential_reader(client_for(proxy, s3.region), s3, "obj")
    assert reader.read(10) == data[:10]
    near, far = WINDOW_FILL + 100, 2 * SKIP_BY_READING + 7
    reader.seek(near)  # a short jump reads through the bytes between
    assert reader.read(10) == data[near : near + 10]
    reader.seek(far)
    assert reader.read(3 * MIB) == data[far : far + 3 * MIB]
    starts = [r.range_start for r in gets_of(proxy, s3, "obj")]
    assert far in starts and near not in starts, starts


def test_torch_load_gets_its_index_from_the_tail_and_the_tensors_right(s3, proxy):
    state = {f"layer{i}": torch.randn(1024, 1024) for i in range(6)}  # 24 MiB of tensors
    checkpoint = S3Checkpoint(region=s3.region, endpoint=proxy.url)
    with checkpoint.writer(s3.uri("model.pt")) as writer:
        torch.save(state, writer)
    size = len(s3.get("model.pt"))
    # The last part is held until the tail's own GET arrives: the index at the tail cannot have come
    # with the download first, and a load that waited for it would wait 30 s.
    is_get = ranged_get_of(s3.bucket, "model.pt")
    is_tail_get = lambda r: is_get(r) and r.range_start == size - TAIL_BYTES
    held = proxy.add(
        lambda r: is_get(r) and range_of(r)[1] == size - 1 and not is_tail_get(r),
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
    assert [r.range_start for r in gets].count(0) == 1, "the checkpoint was downloaded more than once"


@pytest.mark.parametrize("prefetched", [False, True], ids=["front_to_back", "whole_after_prefetch"])
def test_close_or_drop_while_reading_returns_at_once_and_leaves_nothing_running(s3, proxy, prefetched):
    data = payload(SIZE, seed=51)
    s3.put("obj", data)
    release, _ = hold_part(proxy, s3, "obj")
    client = client_for(proxy, s3.region)
    try:
        closed = sequential_reader(client, s3, "obj")
        if prefetched:
            closed.prefetch()
        assert closed.read(10) == data[:10]
        returns(closed.close, seconds=20)
        dropped = sequential_reader(client, s3, "obj")
        if prefetched:
            dropped.prefetch()
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
