"""Reader semantics without a server: seek/read-size rules, reader-type names, and every reader
strategy (the DCP-optimized one with random planned ranges) over MockS3Client's in-memory bucket
against a BytesIO model, and over a fake of the native download streams that counts requests.
Then the requests themselves, over stand-ins for the GET streams that record each one: which bytes
of the sequential reader's whole-object GET a read waits for, and when a large object's tail comes by
its own GET; the ranged reader's read-ahead, and what it cancels when a read fails, skips ahead, or
finds the object shorter than its listed size."""

import io
import random
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reader_model import ClampedBytesIO, apply_operation

from s3torchconnector import S3Reader, S3ReaderConstructor
from s3torchconnector._s3client import MockS3Client
from s3torchconnector.s3reader import SequentialS3Reader, forward_stream, sequential
from s3torchconnector.s3reader.dcp_optimized import DCPOptimizedS3Reader
from s3torchconnector.s3reader.ranged import (
    DEFAULT_BUFFER_SIZE,
    EXACT_SEGMENT_SIZE,
    FILL_SEGMENT_SIZE,
    MIN_REQUEST_SIZE,
)
from s3torchconnector.s3reader.s3reader import check_read_size, resolve_seek
from s3torchconnector.s3reader.sequential import TAIL_BYTES, TAIL_FETCH_ABOVE


def _size(n):
    return lambda: n


def _no_size():
    raise AssertionError("the object's size was asked for although it was not needed")


# --------------------------------------------------------------------------- resolve_seek


@pytest.mark.parametrize(
    "offset, whence, position, size, expected",
    [
        (0, io.SEEK_SET, 5, 10, 0),
        (7, io.SEEK_SET, 0, 10, 7),
        (10, io.SEEK_SET, 0, 10, 10),
        (11, io.SEEK_SET, 0, 10, 10),  # past the end: clamped to the size
        (10**12, io.SEEK_SET, 3, 10, 10),
        (0, io.SEEK_CUR, 4, 10, 4),
        (3, io.SEEK_CUR, 4, 10, 7),
        (-4, io.SEEK_CUR, 4, 10, 0),
        (100, io.SEEK_CUR, 4, 10, 10),
        (0, io.SEEK_END, 0, 10, 10),
        (-10, io.SEEK_END, 0, 10, 0),
        (-3, io.SEEK_END, 0, 10, 7),
        (5, io.SEEK_END, 0, 10, 10),
        (0, io.SEEK_END, 0, 0, 0),
        (0, io.SEEK_SET, 0, 0, 0),
        (1, io.SEEK_SET, 0, 0, 0),
    ],
)
def test_resolve_seek_positions(offset, whence, position, size, expected):
    assert resolve_seek(offset, whence, position, _size(size)) == expected


@pytest.mark.parametrize(
    "offset, whence, position, size",
    [
        (-1, io.SEEK_SET, 0, 10),
        (-1, io.SEEK_SET, 5, 10),
        (-5, io.SEEK_CUR, 4, 10),
        (-11, io.SEEK_END, 0, 10),
        (-1, io.SEEK_END, 0, 0),
    ],
)
def test_resolve_seek_negative_result_raises_value_error(offset, whence, position, size):
    with pytest.raises(ValueError):
        resolve_seek(offset, whence, position, _size(size))


@pytest.mark.parametrize("whence", [3, -1, 42])
def test_resolve_seek_invalid_whence_raises_value_error(whence):
    with pytest.raises(ValueError):
        resolve_seek(0, whence, 0, _size(10))


@pytest.mark.parametrize("offset", [1.0, "1", None, True])
def test_resolve_seek_non_int_offset_raises_type_error(offset):
    with pytest.raises(TypeError):
        resolve_seek(offset, io.SEEK_SET, 0, _size(10))


@pytest.mark.parametrize(
    "offset, whence, position",
    [(0, io.SEEK_SET, 0), (2, io.SEEK_SET, 5), (5, io.SEEK_SET, 5), (-3, io.SEEK_CUR, 5), (0, io.SEEK_CUR, 5)],
)
def test_resolve_seek_backwards_does_not_need_the_size(offset, whence, position):
    # Seeking back (or nowhere) must not cost a HEAD request.
    expected = position + offset if whence == io.SEEK_CUR else offset
    assert resolve_seek(offset, whence, position, _no_size) == expected


@given(
    size=st.integers(0, 10_000),
    position=st.integers(0, 10_000),
    offset=st.integers(-20_000, 20_000),
    whence=st.sampled_from([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END]),
)
@settings(max_examples=200, deadline=None)
def test_resolve_seek_matches_a_clamped_model(size, position, offset, whence):
    position = min(position, size)
    base = {io.SEEK_SET: 0, io.SEEK_CUR: position, io.SEEK_END: size}[whence]
    target = base + offset
    if target < 0:
        with pytest.raises(ValueError):
            resolve_seek(offset, whence, position, _size(size))
    else:
        assert resolve_seek(offset, whence, position, _size(size)) == min(target, size)


# --------------------------------------------------------------------------- check_read_size


@pytest.mark.parametrize("size, expected", [(None, None), (-1, None), (-100, None), (0, 0), (1, 1), (10**9, 10**9)])
def test_check_read_size(size, expected):
    assert check_read_size(size) == expected


@pytest.mark.parametrize("size", [1.5, "3", b"3", True, False, [1]])
def test_check_read_size_rejects_non_int(size):
    with pytest.raises(TypeError):
        check_read_size(size)


# --------------------------------------------------------------------------- reader type strings


def test_reader_type_string_for_built_in_constructors():
    get = S3ReaderConstructor.get_reader_type_string
    assert get(None) == "sequential"
    assert get(S3ReaderConstructor.default()) == "sequential"
    assert get(S3ReaderConstructor.sequential()) == "sequential"
    assert get(S3ReaderConstructor.range_based()) == "range_based"
    assert get(S3ReaderConstructor.range_based(buffer_size=0)) == "range_based"
    assert get(S3ReaderConstructor.range_based(buffer_size=1000)) == "range_based"


def test_reader_type_string_for_custom_constructors():
    get = S3ReaderConstructor.get_reader_type_string

    def custom(bucket, key, get_object_info, get_stream):
        raise NotImplementedError

    custom.reader_type = "mine"
    assert get(custom) == "mine"
    assert get(lambda **kwargs: None) == "unknown"


@pytest.mark.parametrize("buffer_size", [-1, 1.5, "10", True])
def test_range_based_rejects_bad_buffer_size(buffer_size):
    with pytest.raises(ValueError):
        S3ReaderConstructor.range_based(buffer_size=buffer_size)


@pytest.mark.parametrize("buffer_size", [-1, True, 1.5, "8"])
def test_a_bad_buffer_size_is_refused_with_what_is_allowed(buffer_size):
    """S3ReaderConstructor.range_based: the whole message."""
    with pytest.raises(ValueError) as refused:
        S3ReaderConstructor.range_based(buffer_size)
    assert str(refused.value) == f"buffer_size must be a non-negative int or None, got {buffer_size!r}"


def test_the_dcp_reader_names_itself():
    """S3ReaderConstructor.get_reader_type_string: what user agents (S3's request logs) call it."""
    assert S3ReaderConstructor.get_reader_type_string(S3ReaderConstructor.dcp_optimized()) == "dcp_optimized"
    assert S3ReaderConstructor.get_reader_type_string(S3ReaderConstructor.range_based()) == "range_based"
    assert S3ReaderConstructor.get_reader_type_string(None) == "sequential"


def test_dcp_optimized_constructor_repr_names_its_gap_size():
    """DCPOptimizedConstructor.__repr__."""
    assert repr(S3ReaderConstructor.dcp_optimized(max_gap_size=123)) == "DCPOptimizedConstructor(max_gap_size=123)"


# --------------------------------------------------------------------------- readers over a fake S3


class _Info:
    def __init__(self, size):
        self.size = size


class _Stream:
    """Stands in for a native GetObjectStream of data[start:end]."""

    def __init__(self, data: bytes, object_size: int):
        self._data = data
        self._object_size = object_size
        self._offset = 0
        self.closed = False

    def info(self):
        return _Info(self._object_size)

    def read_all_bytes(self):
        out = self._data[self._offset :]
        self._offset = len(self._data)
        return bytes(out)

    def land_bytes(self):  # everything lands at once here
        return self.read_all_bytes()

    def wait_landed(self, start, end):
        pass

    def has_landed(self, start, end):
        return True

    def readinto(self, buf):
        view = memoryview(buf).cast("B")
        n = min(len(view), len(self._data) - self._offset)
        view[:n] = self._data[self._offset : self._offset + n]
        self._offset += n
        return n

    def close(self):
        self.closed = True


class _FakeObject:
    """Counts the requests a reader makes."""

    def __init__(self, data: bytes):
        self.data = data
        self.heads = 0
        self.gets = []  # (start, end) of each GET, None for whole-object

    def get_object_info(self):
        self.heads += 1
        return _Info(len(self.data))

    def get_stream(self, start=None, end=None):
        self.gets.append((start, end))
        if start is None and end is None:
            return _Stream(self.data, len(self.data))
        return _Stream(self.data[start:end], len(self.data))

    def reader(self, constructor) -> S3Reader:
        return constructor(
            bucket="bucket", key="some/key", get_object_info=self.get_object_info, get_stream=self.get_stream
        )


CONSTRUCTORS = {
    "sequential": S3ReaderConstructor.sequential(),
    "range_based": S3ReaderConstructor.range_based(),
    "range_based_0": S3ReaderConstructor.range_based(buffer_size=0),
    "range_based_1000": S3ReaderConstructor.range_based(buffer_size=1000),
    "range_based_7": S3ReaderConstructor.range_based(buffer_size=7),
}


_ops = st.one_of(
    st.tuples(st.just("read"), st.one_of(st.none(), st.integers(-2, 3000))),
    st.tuples(st.just("read()")),
    st.tuples(st.just("read1"), st.one_of(st.none(), st.integers(-2, 3000))),
    st.tuples(st.just("readinto"), st.integers(0, 3000)),
    st.tuples(st.just("readinto1"), st.integers(0, 3000)),
    st.tuples(st.just("seek"), st.integers(-3000, 3000), st.sampled_from([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])),
    st.tuples(st.just("tell")),
)


def run_against_model(reader, data, ops):
    model = ClampedBytesIO(data)
    for op in ops:
        try:
            expected = apply_operation(model, op)
        except ValueError:
            with pytest.raises(ValueError):
                apply_operation(reader, op)
        else:
            assert apply_operation(reader, op) == expected, op
        assert reader.tell() == model.tell(), op
    assert reader.read() == model.read()


def _reader_on_mock(data: bytes, constructor) -> S3Reader:
    # Through S3Client.get_object, as users get readers: the real request path, S3's range rules.
    client = MockS3Client("us-east-1", "bucket")
    client.add_object("some/key", data)
    return client.get_object("bucket", "some/key", reader_constructor=constructor)


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
@given(data=st.binary(max_size=2500), ops=st.lists(_ops, max_size=25))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_reader_matches_bytesio_model(name, data, ops):
    run_against_model(_reader_on_mock(data, CONSTRUCTORS[name]), data, ops)


@given(
    size=st.integers(0, 2500), seed=st.integers(0, 2**32 - 1), ops=st.lists(_ops, max_size=25), prefetched=st.booleans()
)
# Each path once for sure: a jump forward read through, one that starts a new GET, the window of bytes
# just read, a large read straight from the stream, the tail's own GET, and a step back past the window.
@example(
    size=2000,
    seed=1,
    ops=[("read", 10), ("seek", 200, 0), ("read", 5), ("seek", 1000, 0), ("read", 5)],
    prefetched=False,
)
@example(
    size=2000,
    seed=2,
    ops=[("read", 10), ("seek", 3, 0), ("read", 100), ("seek", -50, 2), ("read", 10)],
    prefetched=False,
)
@example(size=2000, seed=3, ops=[("read", 500), ("seek", 499, 0), ("read", 10)], prefetched=False)
@example(
    size=2000, seed=4, ops=[("read", 10), ("seek", 12, 0), ("read", 10), ("seek", 13, 0), ("read", 3)], prefetched=False
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_sequential_reader_of_a_large_object_matches_bytesio_model(size, seed, ops, prefetched):
    """With its sizes scaled down, so that objects of a few KiB take every path a large object takes:
    front to back through one GET, the window of bytes just read, jumps forward (read through, or a
    new GET), the tail's own GET, and a step back past the window (the object received whole)."""
    data = random.Random(seed).randbytes(size)
    scaled = dict(TAIL_FETCH_ABOVE=200, TAIL_BYTES=100)
    scaled_forward = dict(WINDOW_FILL=16, SKIP_BY_READING=300, _DISCARD_PIECE=7)
    with mock.patch.multiple(sequential, **scaled), mock.patch.multiple(forward_stream, **scaled_forward):
        reader = _reader_on_mock(data, S3ReaderConstructor.sequential())
        if prefetched:
            reader.prefetch()
        run_against_model(reader, data, ops)


# A DCP data file as a load plan sees it: runs of bytes, each an item the plan reads (True) or one
# it skips (False). All True: the plan covers the object.
_segments = st.lists(st.tuples(st.integers(1, 400), st.booleans()), max_size=10)


@given(
    segments=_segments,
    seed=st.integers(0, 2**32 - 1),
    max_gap_size=st.sampled_from([0, 1, 100, float("inf")]),
    ops=st.lists(_ops, max_size=25),
)
# Two items apart within one request: reading the second skips the gap's bytes of the stream.
@example(segments=[(10, True), (10, False), (10, True)], seed=0, max_gap_size=float("inf"), ops=[])
# A step back to an item whose bytes the open request has already passed: it is fetched again.
@example(segments=[(10, True)] * 3, seed=0, max_gap_size=float("inf"), ops=[("read", 15), ("seek", 2, 0), ("read", 5)])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_dcp_optimized_reader_matches_bytesio_model(segments, seed, max_gap_size, ops):
    """The reader DCP loads use answers any sequence of reads and seeks with the object's bytes,
    whatever the planned ranges and however they are grouped into requests."""
    body = random.Random(seed).randbytes(sum(length for length, _ in segments))
    ranges, start = [], 0
    for length, planned in segments:
        if planned:
            ranges.append((start, start + length))
        start += length
    constructor = S3ReaderConstructor.dcp_optimized(max_gap_size)
    constructor.set_file_ranges({"s3://bucket/some/key": ranges})
    reader = _reader_on_mock(body, constructor)
    assert isinstance(reader, DCPOptimizedS3Reader)
    run_against_model(reader, body, ops)


# Larger than the range reader's 8 MiB buffer, and not a whole number of its 1 MiB fill segments:
# buffer fills take several requests, and the last fill of the object is short.
MIB = 1024 * 1024
BIG = random.Random(0).randbytes(20 * MIB + 12345)

_big_size = st.one_of(st.integers(0, 5000), st.integers(0, 12 * MIB))
_big_ops = st.one_of(
    st.tuples(st.just("read"), st.one_of(st.none(), _big_size)),
    st.tuples(st.just("readinto"), _big_size),
    st.tuples(
        st.just("seek"), st.integers(-25 * MIB, 25 * MIB), st.sampled_from([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])
    ),
    st.tuples(st.just("tell")),
)


@given(ops=st.lists(_big_ops, max_size=8))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_range_reader_with_default_buffer_matches_bytesio_model_on_big_objects(ops):
    run_against_model(_reader_on_mock(BIG, S3ReaderConstructor.range_based()), BIG, ops)


class _RequestLog:
    """Wraps a MockS3Client's engine: logs each GET (start, end) and each of its responses' reads, and
    knows the bytes requested and not yet received nor cancelled (in flight). ``check`` runs at every
    GET, with the GET's range already counted in flight."""

    def __init__(self, monkeypatch, client, check=None):
        engine = client._client
        self.events = []  # ("get", start, end) / ("read", start, end)
        self.in_flight = {}  # id(stream) -> bytes still to come
        self.max_in_flight = 0
        self.check = check
        log = self

        class Logged:
            def __init__(self, stream, start, end):
                self._stream, self._start, self._end = stream, start, end

            def _received(self, n):
                log.events.append(("read", self._start, self._end))
                if id(self) in log.in_flight:
                    log.in_flight[id(self)] -= n
                    if log.in_flight[id(self)] <= 0 or n == 0:
                        del log.in_flight[id(self)]

            def readinto(self, buf):
                n = self._stream.readinto(buf)
                self._received(n)
                return n

            def read_all_bytes(self):
                body = self._stream.read_all_bytes()
                self._received(len(body))
                log.in_flight.pop(id(self), None)
                return body

            def close(self):
                log.in_flight.pop(id(self), None)
                self._stream.close()

        def get_object(bucket, key, start=None, end=None, *args):
            stream = Logged(type(engine).get_object(engine, bucket, key, start, end, *args), start, end)
            self.events.append(("get", start, end))
            self.in_flight[id(stream)] = end - start
            self.max_in_flight = max(self.max_in_flight, self.in_flight_bytes())
            if self.check is not None:
                self.check(self)
            return stream

        monkeypatch.setattr(engine, "get_object", get_object)

    def gets(self):
        return [(start, end) for kind, start, end in self.events if kind == "get"]

    def in_flight_bytes(self):
        return sum(self.in_flight.values())

    def clear(self):
        self.events.clear()


def _logged_reader(monkeypatch, data, constructor, check=None):
    client = MockS3Client("us-east-1", "bucket")
    client.add_object("big", data)
    log = _RequestLog(monkeypatch, client, check)
    return client.get_object("bucket", "big", reader_constructor=constructor), log


def _pieces(start, end, size):
    return [(s, min(s + size, end)) for s in range(start, end, size)]


def _all_sent_before_any_is_read(events):
    kinds = [kind for kind, _, _ in events]
    return "read" not in kinds or kinds.index("read") >= kinds.count("get")


def test_range_reader_fetches_exactly_what_a_read_after_a_seek_asks(monkeypatch):
    reader, log = _logged_reader(monkeypatch, BIG, S3ReaderConstructor.range_based())
    reader.seek(5 * MIB + 7)
    assert reader.read(MIB) == BIG[5 * MIB + 7 : 6 * MIB + 7]
    assert log.gets() == [(5 * MIB + 7, 6 * MIB + 7)]  # not 8 MiB of buffer
    log.clear()
    reader.seek(2 * MIB + 3)
    buf = bytearray(3 * MIB + 5)
    assert reader.readinto(buf) == len(buf) and buf == BIG[2 * MIB + 3 : 5 * MIB + 8]
    # Larger: concurrent requests of EXACT_SEGMENT_SIZE, all sent before the first is waited on.
    assert log.gets() == _pieces(2 * MIB + 3, 5 * MIB + 8, EXACT_SEGMENT_SIZE)
    assert _all_sent_before_any_is_read(log.events)
    log.clear()
    reader.seek(12 * MIB)
    assert reader.read(10) == BIG[12 * MIB : 12 * MIB + 10]  # small: at least MIN_REQUEST_SIZE
    assert log.gets() == [(12 * MIB, 12 * MIB + MIN_REQUEST_SIZE)]
    log.clear()
    assert reader.read(100) == BIG[12 * MIB + 10 : 12 * MIB + 110]  # ... so the next bytes are there
    assert log.gets() == []
    reader.seek(-5, io.SEEK_END)
    assert reader.read(MIB) == BIG[-5:]  # the end of the object: what there is
    assert log.gets() == [(len(BIG) - 5, len(BIG))]


def test_range_reader_random_reads_cost_one_request_each(monkeypatch):
    # W5's pattern: random 1 MiB reads fetch 1 MiB each, never a buffer's worth.
    reader, log = _logged_reader(monkeypatch, BIG, S3ReaderConstructor.range_based())
    rng = random.Random(5)
    for _ in range(30):
        offset = rng.randrange(0, len(BIG) - MIB)
        reader.seek(offset)
        assert reader.read(MIB) == BIG[offset : offset + MIB]
    assert len(log.gets()) == 30
    assert sum(end - start for start, end in log.gets()) == 30 * MIB


def test_range_reader_read_ahead_grows_while_reads_continue_each_other(monkeypatch):
    reader, log = _logged_reader(monkeypatch, BIG, S3ReaderConstructor.range_based())
    reader.seek(3 * MIB)
    assert reader.read(MIB) == BIG[3 * MIB : 4 * MIB]  # after a seek: exactly the read
    assert log.gets() == [(3 * MIB, 4 * MIB)]
    ahead = []  # bytes requested beyond the position after each read
    position = 4 * MIB
    for _ in range(8):  # to 12 MiB: the window is never cut short by the object's end
        assert reader.read(MIB) == BIG[position : position + MIB]
        position += MIB
        ahead.append(max(end for _, end in log.gets()) - position)
    # The window doubles as the reads make room in it (2 MiB before the first of these reads, 4 MiB
    # after it), then stays at buffer_size, never beyond.
    assert ahead[0] == 4 * MIB
    assert all(a == DEFAULT_BUFFER_SIZE for a in ahead[1:])
    gets = log.gets()
    assert all(end - start <= FILL_SEGMENT_SIZE for start, end in gets)  # in pieces, for concurrency
    assert gets == sorted(gets) and all(a[1] == b[0] for a, b in zip(gets, gets[1:]))  # each byte once
    # A seek ends the stream: the next read is exact again.
    log.clear()
    reader.seek(MIB)
    assert reader.read(MIB) == BIG[MIB : 2 * MIB]
    assert log.gets() == [(MIB, 2 * MIB)]


def test_range_reader_keeps_a_sequential_stream_in_flight_within_buffer_size(monkeypatch):
    def check(log):
        assert log.in_flight_bytes() <= DEFAULT_BUFFER_SIZE

    reader, log = _logged_reader(monkeypatch, BIG, S3ReaderConstructor.range_based(), check)
    out = bytearray()
    reads = 0
    while True:
        piece = reader.read(MIB)
        if not piece:
            break
        out += piece
        reads += 1
        if 4 < reads <= len(BIG) // MIB - 8:
            # The next window's requests are out while this read is used: all of buffer_size.
            assert log.in_flight_bytes() == DEFAULT_BUFFER_SIZE
    assert out == BIG
    assert log.max_in_flight == DEFAULT_BUFFER_SIZE
    gets = log.gets()
    assert gets[0] == (0, MIB) and gets[-1][1] == len(BIG)
    assert all(a[1] == b[0] for a, b in zip(gets, gets[1:]))  # each byte fetched once
    assert log.in_flight_bytes() == 0


@given(
    buffer_size=st.sampled_from([DEFAULT_BUFFER_SIZE, 3 * MIB + 5, 100_000, 70_000]),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("read"), st.one_of(st.integers(0, 3 * MIB), st.integers(0, 10 * MIB))),
            st.tuples(st.just("readinto"), st.integers(0, 3 * MIB)),
            st.tuples(st.just("read"), st.integers(0, 2000)),
            st.tuples(st.just("seek"), st.integers(-3 * MIB, 3 * MIB), st.just(io.SEEK_CUR)),
            st.tuples(st.just("seek"), st.integers(0, 21 * MIB), st.just(io.SEEK_SET)),
        ),
        max_size=30,
    ),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
def test_range_reader_read_ahead_stays_within_buffer_size(monkeypatch, buffer_size, ops):
    """Whatever the reads and seeks: requests in flight plus bytes held stay within buffer_size (a
    read's own exact requests aside, which go to the caller), and the bytes are right."""
    current_read = [0]

    def check(log):
        assert log.in_flight_bytes() <= buffer_size + current_read[0]

    with monkeypatch.context() as patch:
        reader, log = _logged_reader(patch, BIG, S3ReaderConstructor.range_based(buffer_size=buffer_size), check)
        model = ClampedBytesIO(BIG)
        for op in ops:
            current_read[0] = op[1] if op[0] in ("read", "readinto") else 0
            try:
                expected = apply_operation(model, op)
            except ValueError:
                with pytest.raises(ValueError):
                    apply_operation(reader, op)
            else:
                assert apply_operation(reader, op) == expected, op
            assert reader.tell() == model.tell()
            held = sum(segment.stop - segment.start for segment in reader._segments)
            assert held <= buffer_size
            assert log.in_flight_bytes() <= held
            if current_read[0] < buffer_size:  # smaller reads are fetched in pieces
                assert all(end - start <= max(FILL_SEGMENT_SIZE, EXACT_SEGMENT_SIZE) for start, end in log.gets())
            log.clear()
        reader.close()
        assert log.in_flight_bytes() == 0  # closing cancels what was still in flight


def test_range_reader_reads_larger_than_the_buffer_go_straight_through(monkeypatch):
    reader, log = _logged_reader(monkeypatch, BIG, S3ReaderConstructor.range_based())
    reader.seek(MIB)
    assert reader.read(9 * MIB) == BIG[MIB : 10 * MIB]
    assert log.gets() == [(MIB, 10 * MIB)]


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_reader_file_interface(name):
    fake = _FakeObject(b"0123456789")
    reader = fake.reader(CONSTRUCTORS[name])
    assert isinstance(reader, io.BufferedIOBase)
    assert isinstance(reader, S3Reader)
    assert reader.bucket == "bucket" and reader.key == "some/key"
    assert reader.readable() and reader.seekable()
    assert not reader.writable()
    assert not reader.closed
    assert reader.read(4) == b"0123"
    assert reader.read(-1) == b"456789"
    assert reader.read() == b""
    assert reader.read(10) == b""
    reader.close()
    assert reader.closed
    for call in (reader.read, reader.tell, lambda: reader.seek(0), lambda: reader.readinto(bytearray(2))):
        with pytest.raises(ValueError):
            call()
    reader.close()  # closing twice is harmless


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_reader_is_a_context_manager(name):
    with _FakeObject(b"abc").reader(CONSTRUCTORS[name]) as reader:
        assert reader.read() == b"abc"
    assert reader.closed


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_creating_a_reader_sends_nothing(name):
    fake = _FakeObject(b"abc")
    fake.reader(CONSTRUCTORS[name])
    assert fake.heads == 0 and fake.gets == []


def test_sequential_reader_fetches_the_object_once():
    data = bytes(range(256)) * 40
    fake = _FakeObject(data)
    reader = fake.reader(S3ReaderConstructor.sequential())
    out = b"".join(iter(lambda: reader.read(100), b""))
    reader.seek(0)
    assert reader.read() == data
    assert out == data
    assert fake.gets == [(0, None)]  # all of it, kept after the first read of a piece


def test_range_based_reader_serves_small_reads_from_one_buffered_request():
    data = bytes(range(256)) * 40  # 10240 bytes
    fake = _FakeObject(data)
    reader = fake.reader(S3ReaderConstructor.range_based(buffer_size=4096))
    assert reader.read(10) == data[:10]
    assert reader.read(10) == data[10:20]
    assert len(fake.gets) == 1
    start, end = fake.gets[0]
    assert start == 0 and end - start <= 4096


def test_range_based_reader_without_buffer_fetches_only_what_is_read():
    data = bytes(range(256)) * 40
    fake = _FakeObject(data)
    reader = fake.reader(S3ReaderConstructor.range_based(buffer_size=0))
    reader.seek(1000)
    assert reader.read(24) == data[1000:1024]
    assert reader.seek(-10, io.SEEK_END) == len(data) - 10
    assert reader.read(100) == data[-10:]
    fetched = sum(end - start for start, end in fake.gets)
    assert fetched == 34


def test_range_based_reader_memory_is_bounded_by_buffer_size():
    data = bytes(5000)
    fake = _FakeObject(data)
    reader = fake.reader(S3ReaderConstructor.range_based(buffer_size=100))
    for _ in range(50):
        assert reader.read(7) == bytes(7)
    assert all(end - start <= 100 for start, end in fake.gets)


# --------------------------------------------------------------------------- SequentialS3Reader: its GETs landing
#
# The in-memory client's GET has every byte in at once, and the native one's land too fast to catch
# part-way without timing: ``LandingGets`` stands in for the reader's ``get_stream``, with a whole-object
# GET whose bytes land only when the reader waits for them (``wait_landed``), as the native stream's
# parts do, and ranged GETs that answer at once. It records what the reader asked for.


def patterned(size: int) -> bytes:
    return (bytes(range(251)) * (size // 251 + 1))[:size]  # 251: no offset's byte repeats at a power of two


class _WholeGet:
    """The whole-object GET: ``land_bytes`` gives the body its parts land in; nothing has landed
    until the reader waits for a range (the native GetObjectStream's contract)."""

    def __init__(self, data: bytes, log: list):
        self._data = data
        self._body = None
        self._landed = []  # [start, end) ranges in
        self._log = log
        self.closed = False

    def land_bytes(self):
        self._log.append(("land",))
        self._body = bytearray(len(self._data))
        return self._body

    def read_all_bytes(self) -> bytes:
        self._log.append(("read_all",))
        return self._data

    def has_landed(self, start: int, end: int) -> bool:
        return end <= start or any(s <= start and end <= e for s, e in self._landed)

    def wait_landed(self, start: int, end: int) -> None:
        self._log.append(("wait", start, end))
        self._body[start:end] = self._data[start:end]
        self._landed.append((start, end))

    def close(self) -> None:
        self.closed = True


class _RangedGet:
    """A ranged GET, all of its bytes in at once; ``fail_at`` makes the read that reaches that many
    bytes fail, as a broken connection would."""

    def __init__(self, data: bytes, object_size: int, fail_at=None):
        self._data = data
        self._object_size = object_size
        self._offset = 0
        self._fail_at = fail_at
        self.closed = False

    def info(self):
        return _Info(self._object_size)

    def read_all_bytes(self) -> bytes:
        rest = self._data[self._offset :]
        self._offset = len(self._data)
        return rest

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._data) - self._offset)
        if self._fail_at is not None and self._offset + n >= self._fail_at:
            self._offset += n // 2  # part of it was consumed when the failure came
            raise ConnectionError("connection reset")
        view[:n] = self._data[self._offset : self._offset + n]
        self._offset += n
        return n

    def close(self) -> None:
        self.closed = True


class LandingGets:
    """A reader's ``get_stream``: () is the whole object, (start, end) a ranged GET."""

    def __init__(self, data: bytes, fail_at=None):
        self.data = data
        self.log: list = []
        self.whole: list = []
        self.ranged: list = []
        self._fail_at = fail_at  # the first ranged GET fails when its reads reach this many bytes

    def __call__(self, start=None, end=None):
        self.log.append(("get", start, end))
        if start is None and end is None:
            self.whole.append(_WholeGet(self.data, self.log))
            return self.whole[-1]
        fail_at, self._fail_at = self._fail_at, None
        self.ranged.append(_RangedGet(self.data[start:end], len(self.data), fail_at))
        return self.ranged[-1]

    def gets(self) -> list:
        return [entry[1:] for entry in self.log if entry[0] == "get"]

    def waits(self) -> list:
        return [entry[1:] for entry in self.log if entry[0] == "wait"]


def sequential_reader(data: bytes, prefetched: bool = False, fail_at=None):
    """A sequential reader of ``data``; ``prefetched`` starts its whole-object GET, as datasets do."""
    gets = LandingGets(data, fail_at)
    made = SequentialS3Reader("bucket", "key", lambda: _Info(len(data)), gets)
    if prefetched:
        made.prefetch()
    return made, gets


def test_a_read_of_a_piece_waits_for_its_bytes_only():
    """SequentialS3Reader._range: after prefetch(), the first read of a piece returns once its own
    bytes of the whole-object GET have landed; reading all of it from the start then waits for the whole body."""
    data = patterned(300_000)
    made, gets = sequential_reader(data, prefetched=True)
    assert made.read(100) == data[:100]
    made.seek(200_000)
    buffer = bytearray(50)
    assert made.readinto(buffer) == 50 and buffer == data[200_000:200_050]
    assert gets.gets() == [(None, None)] and gets.waits() == [(0, 100), (200_000, 200_050)]
    made.seek(0)
    assert made.read() == data
    assert gets.waits()[-1] == (0, len(data)) and gets.gets() == [(None, None)]


@pytest.mark.parametrize("offset_from_end", [TAIL_BYTES, 100])
def test_a_read_near_the_end_of_a_large_object_does_not_wait_for_the_body(offset_from_end):
    """SequentialS3Reader._range and _from_tail: in an object larger than TAIL_FETCH_ABOVE, a read in
    its last TAIL_BYTES that has not landed comes by one ranged GET of that tail (a zip's index,
    which torch.load reads first, is there), without waiting for the whole body; the tail's other
    reads come from that GET too."""
    size = TAIL_FETCH_ABOVE + 12_345
    data = patterned(size)
    made, gets = sequential_reader(data, prefetched=True)
    start = size - offset_from_end
    made.seek(start)
    assert made.read(60) == data[start : start + 60]
    made.seek(size - 30)
    assert made.read() == data[-30:]  # the rest, clamped to the object's end
    assert gets.waits() == []
    assert gets.gets() == [(None, None), (size - TAIL_BYTES, size)]


@pytest.mark.parametrize(
    "size, offset_from_end",
    [(TAIL_FETCH_ABOVE, 100), (TAIL_FETCH_ABOVE + 12_345, TAIL_BYTES + 1), (2 * MIB, 100)],
)
def test_other_reads_wait_for_the_body(size, offset_from_end):
    """SequentialS3Reader._range: an object of TAIL_FETCH_ABOVE bytes or less, or a read before the
    last TAIL_BYTES, waits for its bytes of the whole-object GET: no other request."""
    data = patterned(size)
    made, gets = sequential_reader(data, prefetched=True)
    start = size - offset_from_end
    made.seek(start)
    assert made.read(60) == data[start : start + 60]
    assert gets.gets() == [(None, None)] and gets.waits() == [(start, start + 60)]


def test_a_large_objects_first_bytes_wait_for_the_body():
    """SequentialS3Reader._range: the tail GET is only for the tail."""
    size = TAIL_FETCH_ABOVE + 12_345
    data = patterned(size)
    made, gets = sequential_reader(data, prefetched=True)
    assert made.read(10) == data[:10]
    assert gets.gets() == [(None, None)] and gets.waits() == [(0, 10)]


def test_prefetch_starts_one_get_and_only_while_it_can_be_used():
    """SequentialS3Reader.prefetch: twice is one GET; after the body is in, or after close, none."""
    data = patterned(1000)
    made, gets = sequential_reader(data)
    made.prefetch()
    made.prefetch()
    assert made.read() == data
    made.prefetch()
    assert gets.gets() == [(None, None)]

    closed, gets = sequential_reader(data)
    closed.close()
    closed.prefetch()
    assert gets.gets() == []


def test_closing_a_reader_cancels_its_get():
    """SequentialS3Reader.close: a GET still landing is closed (its transfer cancelled)."""
    made, gets = sequential_reader(patterned(300_000), prefetched=True)
    made.read(10)
    made.close()
    assert gets.whole[0].closed and made.closed
    with pytest.raises(ValueError):
        made.read(1)


def test_a_large_object_read_in_pieces_is_one_get_front_to_back():
    """SequentialS3Reader._fill, ForwardStream: without prefetch(), reads of pieces of a large object
    take its bytes in order from one GET (from byte 0); nothing waits for a whole body."""
    size = TAIL_FETCH_ABOVE + 12_345
    data = patterned(size)
    made, gets = sequential_reader(data)
    assert made.read(10) == data[:10]
    buffer = bytearray(2 * MIB)
    assert made.readinto(buffer) == len(buffer) and buffer == data[10 : 10 + 2 * MIB]
    made.seek(3 * MIB)
    assert made.read(100) == data[3 * MIB : 3 * MIB + 100]
    assert gets.gets() == [(0, None)] and gets.waits() == []


def test_a_small_object_read_in_pieces_is_kept_whole():
    """SequentialS3Reader._begin_pieces: an object of TAIL_FETCH_ABOVE bytes or less is received
    whole by its one GET and serves every later read and seek."""
    data = patterned(TAIL_FETCH_ABOVE)
    made, gets = sequential_reader(data)
    assert made.read(10) == data[:10]
    made.seek(-100, 2)
    assert made.read() == data[-100:]
    made.seek(5)
    assert made.read(20) == data[5:25]
    assert gets.gets() == [(0, None)]


def test_a_large_objects_tail_comes_by_its_own_get_before_the_stream_reaches_it():
    """SequentialS3Reader._fill_forward: the tail's GET, as in the whole-object case."""
    size = TAIL_FETCH_ABOVE + 12_345
    data = patterned(size)
    made, gets = sequential_reader(data)
    assert made.read(10) == data[:10]
    made.seek(size - 100)
    assert made.read() == data[-100:]
    assert gets.gets() == [(0, None), (size - TAIL_BYTES, size)]


def test_a_failed_read_leaves_the_stream_and_the_next_read_receives_the_object_whole():
    """ForwardStream.readinto: after a failure part-way through a read, the stream's position is
    unknown; the next read must not take bytes from it (they would be the wrong ones)."""
    size = TAIL_FETCH_ABOVE + 12_345
    data = patterned(size)
    made, gets = sequential_reader(data, fail_at=2 * MIB)
    assert made.read(10) == data[:10]
    with pytest.raises(ConnectionError):
        made.read(3 * MIB)
    assert made.tell() == 10
    assert made.read(100) == data[10:110]
    assert gets.gets() == [(0, None), (None, None)]


def test_closing_a_reader_cancels_its_forward_get():
    """SequentialS3Reader.close: the front-to-back GET is closed too."""
    made, gets = sequential_reader(patterned(TAIL_FETCH_ABOVE + 1))
    made.read(10)
    made.close()
    assert gets.ranged[0].closed and made.closed


# --------------------------------------------------------------------------- RangedS3Reader: every GET recorded


class _Ranged:
    """A ranged GET's body, read in pieces as the native stream's; remembers whether it was closed."""

    def __init__(self, body: bytes):
        self._body = memoryview(body)
        self.closed = False

    def readinto(self, buffer) -> int:
        target = memoryview(buffer).cast("B")
        n = min(len(target), len(self._body))
        target[:n] = self._body[:n]
        self._body = self._body[n:]
        return n

    def read_all_bytes(self) -> bytes:
        body, self._body = self._body.tobytes(), self._body[:0]
        return body

    def close(self) -> None:
        self.closed = True


class _Failing(_Ranged):
    def readinto(self, buffer) -> int:
        raise OSError("connection reset")


class RangedGets:
    """A ranged reader's ``get_stream`` over ``data``: every GET (start, end) and its stream; the GET
    numbered ``failing`` (from 0), if any, fails when read."""

    def __init__(self, data: bytes, failing=None, kind=None):
        self.data = data
        self.failing = failing
        self.kind = kind or _Ranged
        self.streams: list = []

    def __call__(self, start, end):
        kind = _Failing if len(self.streams) == self.failing else self.kind
        stream = kind(self.data[start:end])
        self.streams.append(((start, end), stream))
        return stream

    def ranges(self) -> list:
        return [bounds for bounds, _ in self.streams]


def ranged_reader(data: bytes, listed_size=None, buffer_size=None, failing=None, kind=None):
    from s3torchconnector.s3reader import RangedS3Reader

    gets = RangedGets(data, failing, kind)
    size = len(data) if listed_size is None else listed_size
    return RangedS3Reader("bucket", "key", lambda: _Info(size), gets, buffer_size=buffer_size), gets


@pytest.mark.parametrize("into", [False, True])
def test_a_ranged_read_past_where_the_object_really_ends(into):
    """RangedS3Reader._fetch and _object_ends_at: with a size that says more than the object holds (an
    object_info of a longer version), a read of several pieces returns the bytes there are, the
    requests for pieces past the end are cancelled, and the reader then knows the real size."""
    data = patterned(MIB + 1000)
    made, gets = ranged_reader(data, listed_size=4 * MIB)
    made.seek(500)
    if into:
        buffer = bytearray(3 * MIB)
        assert made.readinto(buffer) == len(data) - 500 and buffer[: len(data) - 500] == data[500:]
    else:
        assert made.read(3 * MIB) == data[500:]
    # Its three 1 MIB pieces were asked for at once; the second came short, and the third was cancelled.
    # (The reader then asks for the rest from the real end again, which S3 answers with no bytes.)
    assert gets.ranges()[:3] == [(500, MIB + 500), (MIB + 500, 2 * MIB + 500), (2 * MIB + 500, 3 * MIB + 500)]
    assert [stream.closed for _, stream in gets.streams[:3]] == [False, False, True]
    assert made.tell() == len(data)
    assert made.read(10) == b"" and made.seek(0, 2) == len(data)
    made.seek(10)
    assert made.read(5) == data[10:15]


def test_a_stream_of_reads_past_where_the_object_really_ends():
    """RangedS3Reader._take and _object_ends_at: reads that continue each other through the read-ahead
    stop at the object's real end; the read-ahead past it is dropped and not asked for again."""
    data = patterned(300_000)
    made, gets = ranged_reader(data, listed_size=2 * MIB)
    got = b""
    while True:
        piece = made.read(40_000)
        if not piece:
            break
        got += piece
    assert got == data and made.tell() == len(data)
    assert made.seek(0, 2) == len(data)
    assert all(start < len(data) for start, _ in gets.ranges())


def test_a_read_within_the_read_ahead_sends_no_request():
    """RangedS3Reader._continues: a read after a seek to bytes already fetched ahead (the read-ahead's
    first byte, or further in) is served from them."""
    data = patterned(200_000)
    made, gets = ranged_reader(data)
    assert made.read(100) == data[:100]
    fetched = gets.ranges()
    assert fetched == [(0, 64 * 1024)]
    made.seek(1000)
    assert made.read(100) == data[1000:1100]
    made.seek(0)
    assert made.read(100) == data[:100]
    assert gets.ranges() == fetched


def test_a_read_from_the_middle_of_a_request_in_flight():
    """RangedS3Reader._take: a read that starts inside a read-ahead request still in flight and goes past
    its end gets the bytes from where it starts (that request's body is not put at the read's start)."""
    data = patterned(600_000)
    made, gets = ranged_reader(data)
    for _ in range(6):  # a stream of reads: the read-ahead now has a request in flight past them
        made.read(30_000)
    made.seek(200_000)
    assert made.read(250_000) == data[200_000:450_000]
    buffer = bytearray(100_000)
    made.seek(460_000)
    assert made.readinto(buffer) == 100_000 and buffer == data[460_000:560_000]


def test_a_failed_piece_cancels_the_pieces_after_it():
    """RangedS3Reader._fetch: when one piece of a read fails, the error reaches the caller and the
    requests of the pieces after it are cancelled (those before it were read whole)."""
    data = patterned(4 * MIB)
    made, gets = ranged_reader(data, failing=1)
    made.seek(100)
    with pytest.raises(OSError, match="connection reset"):
        made.readinto(bytearray(3 * MIB))
    assert [stream.closed for _, stream in gets.streams] == [False, False, True]


def test_skipping_ahead_within_the_read_ahead_cancels_the_requests_skipped():
    """RangedS3Reader._drop_through: a read that skips ahead to a request in flight, taking all of it,
    cancels the requests in flight before it (their bytes will not be read)."""
    data = patterned(12 * MIB)
    made, gets = ranged_reader(data)
    for _ in range(8):  # a stream of reads: its read-ahead now holds several requests in flight
        made.read(200_000)
    in_flight = [(bounds, stream) for bounds, stream in gets.streams if bounds[0] >= made.tell()]
    assert len(in_flight) >= 3
    (_, skipped_stream), (taken, _) = in_flight[0], in_flight[1]
    made.seek(taken[0])
    assert made.read(taken[1] - taken[0]) == data[taken[0] : taken[1]]
    assert skipped_stream.closed
    assert not any(stream.closed for bounds, stream in gets.streams if bounds[0] >= taken[0])


def test_a_read_where_the_read_ahead_ends_continues_the_stream():
    """RangedS3Reader._continues and _read_ahead: a read after a seek to the very end of the read-ahead
    continues the stream (its window doubles: the next request is twice the first), and the bytes
    fetched before stay (a seek back to them sends nothing)."""
    data = patterned(1 * MIB)
    made, gets = ranged_reader(data)
    assert made.read(100) == data[:100]
    made.seek(64 * 1024)
    assert made.read(100) == data[65536:65636]
    made.seek(0)
    assert made.read(100) == data[:100]
    assert gets.ranges() == [(0, 65536), (65536, 65536 + 2 * 65536)]


class _ReadintoOnly:
    """A stream with only readinto and close (as a plugin's patched ``_get_object_stream`` may give)."""

    def __init__(self, body: bytes):
        self._stream = _Ranged(body)
        self.readinto = self._stream.readinto
        self.close = self._stream.close


@pytest.mark.parametrize("buffer_size", [None, 0])
def test_a_ranged_reader_over_streams_that_only_readinto(buffer_size):
    """RangedS3Reader._receive: a GET stream without read_all_bytes is read with readinto, into a buffer
    of the bytes asked, for read() as for readinto(), also where the object ends early."""
    data = patterned(300_000)
    made, gets = ranged_reader(data, listed_size=400_000, buffer_size=buffer_size, kind=_ReadintoOnly)
    assert made.read(100) == data[:100]
    made.seek(150_000)
    assert made.read(100_000) == data[150_000:250_000]
    assert made.read() == data[250_000:]
    assert made.tell() == len(data)


@pytest.mark.parametrize("buffer_size", [-1, True, "8"])
def test_a_ranged_reader_refuses_a_bad_buffer_size(buffer_size):
    """RangedS3Reader.__init__ (built directly, not through range_based()): the whole message."""
    with pytest.raises(ValueError) as refused:
        ranged_reader(b"abc", buffer_size=buffer_size)
    assert str(refused.value) == f"buffer_size must be a non-negative int (0 disables it), got {buffer_size!r}"


def test_small_readintos_that_follow_each_other():
    """RangedS3Reader.readinto's fast path (bytes already received where the last read ended): each
    buffer gets its own bytes."""
    data = patterned(300_000)
    made, gets = ranged_reader(data)
    got = bytearray()
    buffer = bytearray(1000)
    while True:
        n = made.readinto(buffer)
        if not n:
            break
        got += buffer[:n]
    assert got == data


def test_empty_reads_send_nothing():
    """RangedS3Reader.read and readinto: reading no bytes, or at the end, sends no request."""
    data = patterned(1000)
    made, gets = ranged_reader(data)
    assert made.read(0) == b"" and made.readinto(bytearray()) == 0
    made.seek(1000)
    assert made.read() == b"" and made.readinto(bytearray(10)) == 0
    assert gets.ranges() == []


def test_a_read_of_the_buffers_size_goes_straight_through_and_uses_what_was_fetched_ahead():
    """RangedS3Reader._read_range: a read of buffer_size bytes (or more) is one GET of exactly its
    bytes, straight to the caller; one that starts in the read-ahead takes those bytes from it and
    fetches only the rest."""
    data = patterned(3 * MIB)
    made, gets = ranged_reader(data, buffer_size=MIB)
    made.seek(100)
    assert made.read(MIB) == data[100 : MIB + 100]
    assert gets.ranges() == [(100, MIB + 100)]

    made, gets = ranged_reader(data, buffer_size=MIB)
    assert made.read(100) == data[:100]
    assert made.read(MIB) == data[100 : MIB + 100]
    assert gets.ranges() == [(0, 65536), (65536, MIB + 100)]


@pytest.mark.parametrize("into", [False, True])
def test_the_read_ahead_past_where_the_object_really_ends_is_cancelled(into):
    """RangedS3Reader._object_ends_at: when a read-ahead response comes short, the requests already in
    flight for bytes past it are cancelled, the reads stop at the object's real end (and say where it
    is), and nothing past it is asked for again."""
    data = patterned(MIB + MIB // 2)
    made, gets = ranged_reader(data, listed_size=8 * MIB)
    got = bytearray()
    buffer = bytearray(200_000)
    while True:
        if into:
            n = made.readinto(buffer)
            piece = buffer[:n]
        else:
            piece = made.read(200_000)
        if not piece:
            break
        got += piece
    assert got == data and made.tell() == len(data) and made.seek(0, 2) == len(data)
    past = [stream for (start, _), stream in gets.streams if start >= len(data)]
    assert past and all(stream.closed for stream in past)
    asked = len(gets.streams)
    made.seek(len(data) - 10)
    assert made.read() == data[-10:] and len(gets.streams) == asked
