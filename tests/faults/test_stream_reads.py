"""A streaming GET's readinto copies out of the received parts without holding the download's lock
(cpp/get.cpp), so one stream takes one reader at a time: a second, concurrent one is refused
with a clear error instead of taking bytes from under the first. And a stream whose reader waits for
its next part fetches further ahead."""

import threading
import time
from functools import partial

from .proxy import forward
from .test_faults import MIB, PART, client_for, payload, ranged_get_of, returns


def test_a_second_concurrent_reader_of_one_stream_is_refused_and_the_first_gets_its_bytes(s3, proxy):
    data = payload(3 * PART, seed=80)
    s3.put("obj.bin", data)
    release = threading.Event()
    is_get = ranged_get_of(s3.bucket, "obj.bin")
    proxy.add(lambda r: is_get(r) and r.range_start == 0, forward(before=lambda _r: release.wait(60)), limit=1)
    stream = client_for(proxy, s3.region)._get_object_stream(s3.bucket, "obj.bin", 0, None)

    outcomes = {}
    refused = threading.Event()

    def read(name):
        buffer = bytearray(2 * MIB)
        try:
            outcomes[name] = (stream.readinto(buffer), bytes(buffer))
        except RuntimeError as error:
            outcomes[name] = error
            refused.set()

    readers = [threading.Thread(target=read, args=(name,)) for name in ("a", "b")]
    for reader in readers:
        reader.start()
    try:
        # The first part is held: whichever reader came first waits for it until the other was refused.
        assert refused.wait(30), "neither concurrent read was refused"
    finally:
        release.set()
    for reader in readers:
        reader.join(30)
    errors = [o for o in outcomes.values() if isinstance(o, Exception)]
    results = [o for o in outcomes.values() if not isinstance(o, Exception)]
    assert len(errors) == 1 and "already being read by another thread" in str(errors[0])
    assert results == [(2 * MIB, data[: 2 * MIB])]
    rest = bytearray(len(data))
    assert stream.readinto(rest) == len(data) - 2 * MIB and rest[: len(data) - 2 * MIB] == data[2 * MIB :]


def test_a_stream_whose_reader_waits_fetches_further_ahead(s3, proxy):
    # Each part takes the proxy 0.2 s to answer: a reader of four parts waits for each of them, and the
    # stream fetches one more part ahead each time, beyond the eight it starts with.
    parts, waits, window = 24, 4, 8
    data = payload(parts * PART, seed=81)
    s3.put("obj.bin", data)
    is_get = ranged_get_of(s3.bucket, "obj.bin")
    proxy.add(is_get, forward(before=lambda _r: time.sleep(0.2)))
    stream = client_for(proxy, s3.region)._get_object_stream(s3.bucket, "obj.bin", 0, None)

    buffer = bytearray(PART)
    for part in range(waits):
        assert stream.readinto(buffer) == PART and buffer == data[part * PART : (part + 1) * PART]

    # Without widening the requests stop at what the reader consumed plus the window (and one being sent).
    assert proxy.wait_for(is_get, waits + window + 2, 20), [r.range for r in proxy.received(is_get)]
    stream.close()


def test_streams_nobody_reads_leave_the_pool_to_the_clients_other_reads(s3, proxy, monkeypatch):
    # A stream's reader copies its parts out of the CRT's buffers itself, but the parts held that way stay
    # within a quarter of the pool's limit, past it they are copied out at once: streams left unread must not
    # take all the pool memory the parts of the stream being read need (a hang).
    monkeypatch.setenv("AWS_CRT_S3_MEMORY_LIMIT_IN_MB", "256")  # the least the CRT takes
    count, parts, window = 6, 10, 8
    objects = {f"obj-{i}.bin": payload(parts * PART, seed=90 + i) for i in range(count)}
    for key, data in objects.items():
        s3.put(key, data)
    client = client_for(proxy, s3.region)
    streams = {key: client._get_object_stream(s3.bucket, key, 0, None) for key in objects}
    for stream in streams.values():
        assert returns(partial(stream.readinto, bytearray(1))) == 1
    # Let every stream fetch ahead what its window allows before any is read on.
    is_part = lambda r: r.method == "GET" and r.range is not None  # noqa: E731
    proxy.wait_for(is_part, count * window, 10)
    for key, stream in streams.items():
        rest = bytearray(len(objects[key]))
        assert returns(partial(stream.readinto, rest)) == len(rest) - 1
        assert rest[:-1] == objects[key][1:], key
