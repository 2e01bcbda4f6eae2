"""Tests written for mutants of the reader strategies (s3reader/sequential.py, constructor.py) that
survived tests/mutation/run.py: each pins a behaviour no other test checked (the mutant it kills is
named in the test's docstring).

The in-memory client's GET has every byte in at once, and the native one's land too fast to catch
part-way without timing: ``LandingGets`` stands in for the reader's ``get_stream``, with a whole-object
GET whose bytes land only when the reader waits for them (``wait_landed``), as the native stream's
parts do, and ranged GETs that answer at once. It records what the reader asked for."""

import pytest

from s3torchconnector import S3ReaderConstructor
from s3torchconnector.s3reader import SequentialS3Reader
from s3torchconnector.s3reader.sequential import TAIL_BYTES, TAIL_FETCH_ABOVE

MiB = 1024 * 1024


def payload(size: int) -> bytes:
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


class _Info:
    def __init__(self, size):
        self.size = size


def reader(data: bytes, prefetched: bool = False, fail_at=None):
    """A sequential reader of ``data``; ``prefetched`` starts its whole-object GET, as datasets do."""
    gets = LandingGets(data, fail_at)
    made = SequentialS3Reader("bucket", "key", lambda: _Info(len(data)), gets)
    if prefetched:
        made.prefetch()
    return made, gets


def test_a_read_of_a_piece_waits_for_its_bytes_only():
    """SequentialS3Reader._range: after prefetch(), the first read of a piece returns once its own
    bytes of the whole-object GET have landed; reading all of it from the start then waits for the whole body."""
    data = payload(300_000)
    made, gets = reader(data, prefetched=True)
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
    data = payload(size)
    made, gets = reader(data, prefetched=True)
    start = size - offset_from_end
    made.seek(start)
    assert made.read(60) == data[start : start + 60]
    made.seek(size - 30)
    assert made.read() == data[-30:]  # the rest, clamped to the object's end
    assert gets.waits() == []
    assert gets.gets() == [(None, None), (size - TAIL_BYTES, size)]


@pytest.mark.parametrize(
    "size, offset_from_end",
    [(TAIL_FETCH_ABOVE, 100), (TAIL_FETCH_ABOVE + 12_345, TAIL_BYTES + 1), (2 * MiB, 100)],
)
def test_other_reads_wait_for_the_body(size, offset_from_end):
    """SequentialS3Reader._range: an object of TAIL_FETCH_ABOVE bytes or less, or a read before the
    last TAIL_BYTES, waits for its bytes of the whole-object GET: no other request."""
    data = payload(size)
    made, gets = reader(data, prefetched=True)
    start = size - offset_from_end
    made.seek(start)
    assert made.read(60) == data[start : start + 60]
    assert gets.gets() == [(None, None)] and gets.waits() == [(start, start + 60)]


def test_a_large_objects_first_bytes_wait_for_the_body():
    """SequentialS3Reader._range: the tail GET is only for the tail."""
    size = TAIL_FETCH_ABOVE + 12_345
    data = payload(size)
    made, gets = reader(data, prefetched=True)
    assert made.read(10) == data[:10]
    assert gets.gets() == [(None, None)] and gets.waits() == [(0, 10)]


def test_prefetch_starts_one_get_and_only_while_it_can_be_used():
    """SequentialS3Reader.prefetch: twice is one GET; after the body is in, or after close, none."""
    data = payload(1000)
    made, gets = reader(data)
    made.prefetch()
    made.prefetch()
    assert made.read() == data
    made.prefetch()
    assert gets.gets() == [(None, None)]

    closed, gets = reader(data)
    closed.close()
    closed.prefetch()
    assert gets.gets() == []


def test_closing_a_reader_cancels_its_get():
    """SequentialS3Reader.close: a GET still landing is closed (its transfer cancelled)."""
    made, gets = reader(payload(300_000), prefetched=True)
    made.read(10)
    made.close()
    assert gets.whole[0].closed and made.closed
    with pytest.raises(ValueError):
        made.read(1)


def test_the_dcp_reader_names_itself():
    """S3ReaderConstructor.get_reader_type_string: what user agents (S3's request logs) call it."""
    assert S3ReaderConstructor.get_reader_type_string(S3ReaderConstructor.dcp_optimized()) == "dcp_optimized"
    assert S3ReaderConstructor.get_reader_type_string(S3ReaderConstructor.range_based()) == "range_based"
    assert S3ReaderConstructor.get_reader_type_string(None) == "sequential"


@pytest.mark.parametrize("buffer_size", [-1, True, 1.5, "8"])
def test_a_bad_buffer_size_is_refused_with_what_is_allowed(buffer_size):
    """S3ReaderConstructor.range_based: the whole message."""
    with pytest.raises(ValueError) as refused:
        S3ReaderConstructor.range_based(buffer_size)
    assert str(refused.value) == f"buffer_size must be a non-negative int or None, got {buffer_size!r}"


# ---------------------------------------------------------------- RangedS3Reader


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


def ranged(data: bytes, listed_size=None, buffer_size=None, failing=None, kind=None):
    from s3torchconnector.s3reader import RangedS3Reader

    gets = RangedGets(data, failing, kind)
    size = len(data) if listed_size is None else listed_size
    return RangedS3Reader("bucket", "key", lambda: _Info(size), gets, buffer_size=buffer_size), gets


@pytest.mark.parametrize("into", [False, True])
def test_a_ranged_read_past_where_the_object_really_ends(into):
    """RangedS3Reader._fetch and _object_ends_at: with a size that says more than the object holds (an
    object_info of a longer version), a read of several pieces returns the bytes there are, the
    requests for pieces past the end are cancelled, and the reader then knows the real size."""
    data = payload(MiB + 1000)
    made, gets = ranged(data, listed_size=4 * MiB)
    made.seek(500)
    if into:
        buffer = bytearray(3 * MiB)
        assert made.readinto(buffer) == len(data) - 500 and buffer[: len(data) - 500] == data[500:]
    else:
        assert made.read(3 * MiB) == data[500:]
    # Its three 1 MiB pieces were asked for at once; the second came short, and the third was cancelled.
    # (The reader then asks for the rest from the real end again, which S3 answers with no bytes.)
    assert gets.ranges()[:3] == [(500, MiB + 500), (MiB + 500, 2 * MiB + 500), (2 * MiB + 500, 3 * MiB + 500)]
    assert [stream.closed for _, stream in gets.streams[:3]] == [False, False, True]
    assert made.tell() == len(data)
    assert made.read(10) == b"" and made.seek(0, 2) == len(data)
    made.seek(10)
    assert made.read(5) == data[10:15]


def test_a_stream_of_reads_past_where_the_object_really_ends():
    """RangedS3Reader._take and _object_ends_at: reads that continue each other through the read-ahead
    stop at the object's real end; the read-ahead past it is dropped and not asked for again."""
    data = payload(300_000)
    made, gets = ranged(data, listed_size=2 * MiB)
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
    data = payload(200_000)
    made, gets = ranged(data)
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
    data = payload(600_000)
    made, gets = ranged(data)
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
    data = payload(4 * MiB)
    made, gets = ranged(data, failing=1)
    made.seek(100)
    with pytest.raises(OSError, match="connection reset"):
        made.readinto(bytearray(3 * MiB))
    assert [stream.closed for _, stream in gets.streams] == [False, False, True]


def test_skipping_ahead_within_the_read_ahead_cancels_the_requests_skipped():
    """RangedS3Reader._drop_through: a read that skips ahead to a request in flight, taking all of it,
    cancels the requests in flight before it (their bytes will not be read)."""
    data = payload(12 * MiB)
    made, gets = ranged(data)
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
    data = payload(1 * MiB)
    made, gets = ranged(data)
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
    data = payload(300_000)
    made, gets = ranged(data, listed_size=400_000, buffer_size=buffer_size, kind=_ReadintoOnly)
    assert made.read(100) == data[:100]
    made.seek(150_000)
    assert made.read(100_000) == data[150_000:250_000]
    assert made.read() == data[250_000:]
    assert made.tell() == len(data)


@pytest.mark.parametrize("buffer_size", [-1, True, "8"])
def test_a_ranged_reader_refuses_a_bad_buffer_size(buffer_size):
    """RangedS3Reader.__init__ (built directly, not through range_based()): the whole message."""
    with pytest.raises(ValueError) as refused:
        ranged(b"abc", buffer_size=buffer_size)
    assert str(refused.value) == f"buffer_size must be a non-negative int (0 disables it), got {buffer_size!r}"


def test_small_readintos_that_follow_each_other():
    """RangedS3Reader.readinto's fast path (bytes already received where the last read ended): each
    buffer gets its own bytes."""
    data = payload(300_000)
    made, gets = ranged(data)
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
    data = payload(1000)
    made, gets = ranged(data)
    assert made.read(0) == b"" and made.readinto(bytearray()) == 0
    made.seek(1000)
    assert made.read() == b"" and made.readinto(bytearray(10)) == 0
    assert gets.ranges() == []


def test_a_read_of_the_buffers_size_goes_straight_through_and_uses_what_was_fetched_ahead():
    """RangedS3Reader._read_range: a read of buffer_size bytes (or more) is one GET of exactly its
    bytes, straight to the caller; one that starts in the read-ahead takes those bytes from it and
    fetches only the rest."""
    data = payload(3 * MiB)
    made, gets = ranged(data, buffer_size=MiB)
    made.seek(100)
    assert made.read(MiB) == data[100 : MiB + 100]
    assert gets.ranges() == [(100, MiB + 100)]

    made, gets = ranged(data, buffer_size=MiB)
    assert made.read(100) == data[:100]
    assert made.read(MiB) == data[100 : MiB + 100]
    assert gets.ranges() == [(0, 65536), (65536, MiB + 100)]


@pytest.mark.parametrize("into", [False, True])
def test_the_read_ahead_past_where_the_object_really_ends_is_cancelled(into):
    """RangedS3Reader._object_ends_at: when a read-ahead response comes short, the requests already in
    flight for bytes past it are cancelled, the reads stop at the object's real end (and say where it
    is), and nothing past it is asked for again."""
    data = payload(MiB + MiB // 2)
    made, gets = ranged(data, listed_size=8 * MiB)
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


def test_a_large_object_read_in_pieces_is_one_get_front_to_back():
    """SequentialS3Reader._fill, ForwardStream: without prefetch(), reads of pieces of a large object
    take its bytes in order from one GET (from byte 0); nothing waits for a whole body."""
    size = TAIL_FETCH_ABOVE + 12_345
    data = payload(size)
    made, gets = reader(data)
    assert made.read(10) == data[:10]
    buffer = bytearray(2 * MiB)
    assert made.readinto(buffer) == len(buffer) and buffer == data[10 : 10 + 2 * MiB]
    made.seek(3 * MiB)
    assert made.read(100) == data[3 * MiB : 3 * MiB + 100]
    assert gets.gets() == [(0, None)] and gets.waits() == []


def test_a_small_object_read_in_pieces_is_kept_whole():
    """SequentialS3Reader._begin_pieces: an object of TAIL_FETCH_ABOVE bytes or less is received
    whole by its one GET and serves every later read and seek."""
    data = payload(TAIL_FETCH_ABOVE)
    made, gets = reader(data)
    assert made.read(10) == data[:10]
    made.seek(-100, 2)
    assert made.read() == data[-100:]
    made.seek(5)
    assert made.read(20) == data[5:25]
    assert gets.gets() == [(0, None)]


def test_a_large_objects_tail_comes_by_its_own_get_before_the_stream_reaches_it():
    """SequentialS3Reader._fill_forward: the tail's GET, as in the whole-object case."""
    size = TAIL_FETCH_ABOVE + 12_345
    data = payload(size)
    made, gets = reader(data)
    assert made.read(10) == data[:10]
    made.seek(size - 100)
    assert made.read() == data[-100:]
    assert gets.gets() == [(0, None), (size - TAIL_BYTES, size)]


def test_a_failed_read_leaves_the_stream_and_the_next_read_receives_the_object_whole():
    """ForwardStream.readinto: after a failure part-way through a read, the stream's position is
    unknown; the next read must not take bytes from it (they would be the wrong ones)."""
    size = TAIL_FETCH_ABOVE + 12_345
    data = payload(size)
    made, gets = reader(data, fail_at=2 * MiB)
    assert made.read(10) == data[:10]
    with pytest.raises(ConnectionError):
        made.read(3 * MiB)
    assert made.tell() == 10
    assert made.read(100) == data[10:110]
    assert gets.gets() == [(0, None), (None, None)]


def test_closing_a_reader_cancels_its_forward_get():
    """SequentialS3Reader.close: the front-to-back GET is closed too."""
    made, gets = reader(payload(TAIL_FETCH_ABOVE + 1))
    made.read(10)
    made.close()
    assert gets.ranged[0].closed and made.closed
