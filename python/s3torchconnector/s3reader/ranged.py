"""RangedS3Reader: fetches only the byte ranges that reads ask for, with a read-ahead that follows
the access pattern (as a kernel's readahead and Mountpoint's prefetcher do)."""

from collections import deque
from typing import Callable, Deque, List, Optional

from .s3reader import S3Reader, check_read_size, readinto_full

DEFAULT_BUFFER_SIZE = 8 * 1024 * 1024
# A stream's read-ahead is requested as concurrent ranged GETs of at most this size: each S3 connection is slow
# and far, so throughput is the bytes in flight over a request's latency, and a window of buffer_size in 1 MiB
# requests keeps eight of them in flight (measured in commit 49a685d).
FILL_SEGMENT_SIZE = 1024 * 1024
# A read after a seek fetches exactly its bytes, as concurrent GETs of at most this size. Smaller pieces would
# cut a 1 MiB read's transfer time where each connection is slow, but cost more in first-byte latency than they
# save (W5 was slower with them: commit 512ec72).
EXACT_SEGMENT_SIZE = 1024 * 1024
# ... but at least this much (within buffer_size): a request's bytes cost little next to its first byte's
# latency, and a small read is often followed by the bytes after it (a length, then what it counts).
MIN_REQUEST_SIZE = 64 * 1024

_LARGE, _EXACT, _STREAM = range(3)


class _Segment:
    """Bytes [start, stop) of the object: a request in flight (``stream``), then its body (``data``,
    shorter than asked only where the object ends)."""

    __slots__ = ("start", "stop", "stream", "data")

    def __init__(self, start: int, stop: int, stream):
        self.start = start
        self.stop = stop
        self.stream = stream
        self.data: Optional[memoryview] = None


class RangedS3Reader(S3Reader):
    """Each read becomes byte-range GETs. Reads of ``buffer_size`` or more go straight to the
    caller (``buffer_size=0`` turns buffering off: every read is one GET of exactly its bytes).
    Smaller reads adapt to the access pattern:

    - a read that does not continue the previous one (after a seek) fetches exactly its bytes
      (at least 64 KiB), as concurrent 1 MiB requests when it is larger;
    - reads that continue each other (or land in what was fetched ahead) are a stream: its
      read-ahead window doubles, up to ``buffer_size``, each time the reads make room for another
      request in it, and the window's requests (1 MiB each) stay in flight while the bytes before
      them are read, a new one starting as each is consumed. A seek elsewhere ends the stream.

    The read-ahead (bytes received and bytes requested) never exceeds ``buffer_size``, so memory
    stays bounded for objects of any size.
    """

    def __init__(
        self,
        bucket: str,
        key: str,
        get_object_info: Callable,
        get_stream: Callable,
        buffer_size: Optional[int] = None,
    ):
        super().__init__(bucket, key)
        if buffer_size is None:
            buffer_size = DEFAULT_BUFFER_SIZE
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 0:
            raise ValueError(f"buffer_size must be a non-negative int (0 disables it), got {buffer_size!r}")
        self._get_object_info = get_object_info
        self._get_stream = get_stream
        self._buffer_size = buffer_size
        self._min_request = min(MIN_REQUEST_SIZE, buffer_size)
        self._object_size: Optional[int] = None
        # The read-ahead: contiguous segments in object order, at most buffer_size bytes from the
        # first one's start to the last one's stop.
        self._segments: Deque[_Segment] = deque()
        self._window = 0  # bytes a stream of reads keeps requested from where it reads
        self._last_end = 0  # where the previous read ended: a read from here continues it
        # The fast path of small reads in a stream: the received segment where the last read ended,
        # and the position from which a read must top up the read-ahead (the slow path).
        self._hot: Optional[_Segment] = None
        self._refill_at = 0

    def _size(self) -> int:
        if self._object_size is None:
            self._object_size = self._get_object_info().size
        return self._object_size

    def get_object_info(self):
        """The object's HeadObjectResult (size, ETag...): one HEAD request unless already known."""
        return self._get_object_info()

    def read(self, size: Optional[int] = None) -> bytes:
        self._check_not_closed()
        size = check_read_size(size)
        start = self._position
        end = self._size() if size is None else min(self._size(), start + size)
        if end <= start:
            return b""
        hot = self._hot_slice(start, end)
        if hot is not None:
            return hot.tobytes()
        chunks: List = []
        n = self._read_range(start, end, None, chunks)
        self._position = start + n
        if len(chunks) == 1 and type(chunks[0]) is bytes:
            return chunks[0]  # one request's body, received straight into a bytes object
        return b"".join(chunks)

    def readinto(self, buf) -> int:
        self._check_not_closed()
        target = memoryview(buf).cast("B")
        start = self._position
        end = min(self._size(), start + len(target))
        if end <= start:
            return 0
        hot = self._hot_slice(start, end)
        if hot is not None:
            target[: end - start] = hot
            return end - start
        n = self._read_range(start, end, target, None)
        self._position = start + n
        return n

    # ------------------------------------------------------------------ reading

    def _hot_slice(self, start: int, end: int) -> Optional[memoryview]:
        """Bytes [start, end) when they are in the segment the last read ended in and reading them
        leaves the read-ahead as it is (what _read_range would do, without its bookkeeping)."""
        hot = self._hot
        data = hot.data if hot is not None else None  # a hot segment has landed: it has data
        if (
            hot is None
            or data is None
            or end >= self._refill_at
            or not hot.start <= start
            or end - hot.start > len(data)
        ):
            return None
        self._position = self._last_end = end
        return data[start - hot.start : end - hot.start]

    def _read_range(self, start: int, end: int, out: Optional[memoryview], chunks: Optional[List]) -> int:
        """Bytes [start, end) into ``out``, or appended to ``chunks`` when ``out`` is None.
        Returns how many there were (fewer only where the object ends)."""
        self._hot = None
        try:
            if end - start >= self._buffer_size:
                mode = _LARGE
            elif start == self._last_end or self._continues(start):
                mode = _STREAM
            elif end - start >= self._min_request:
                mode = _EXACT
            else:  # a small read elsewhere: a new stream starts here, its window from the smallest
                mode = _STREAM
                self._drop(len(self._segments))
                self._window = 0
            if mode == _STREAM:
                self._read_ahead(start, end)
            position = start
            while position < end:
                segment = self._segment_at(position)
                if segment is None and mode == _STREAM:
                    self._read_ahead(position, end)
                    segment = self._segment_at(position)
                    if segment is None:
                        break  # past the object's end
                if segment is not None:
                    got = self._take(segment, position, end, out, position - start, chunks)
                elif mode == _EXACT:
                    got = self._fetch(position, end, EXACT_SEGMENT_SIZE, out, position - start, chunks)
                    self._window = end - start  # a stream continuing this read starts from its size
                else:
                    got = self._fetch(position, end, end - position, out, position - start, chunks)
                if got == 0:
                    break
                position += got
            self._last_end = position
            if mode == _STREAM:
                self._read_ahead(position, position)  # in flight while the caller works on this read
                hot = self._segment_at(position)
                if hot is not None and hot.data is not None and self._buffer_size > len(hot.data):
                    window = self._window
                    self._hot = hot
                    self._refill_at = self._segments[-1].stop + max(1, min(FILL_SEGMENT_SIZE, window // 2)) - window
            return position - start
        except BaseException:
            self._drop(len(self._segments))  # requests of a failed read are not reused
            raise

    def _continues(self, position: int) -> bool:
        """The read-ahead holds ``position`` or ends right there."""
        segments = self._segments
        return bool(segments) and segments[0].start <= position <= segments[-1].stop

    def _segment_at(self, position: int) -> Optional[_Segment]:
        for segment in self._segments:
            if segment.start <= position < segment.stop:
                return segment
        return None

    def _read_ahead(self, position: int, end: int) -> None:
        """Keeps a stream's window in flight for a read of [position, end) (end == position: after it).

        A window that has room for at least one more request (or half of itself, while small)
        doubles, up to buffer_size, and requests are added up to ``position + window``; the oldest
        bytes already read give way to them.
        """
        segments = self._segments
        if segments and not segments[0].start <= position <= segments[-1].stop:
            self._drop(len(segments))  # the stream moved elsewhere
        next_start = segments[-1].stop if segments else position
        window = self._window
        if next_start >= end and position + window - next_start < max(1, min(FILL_SEGMENT_SIZE, window // 2)):
            return  # the read is covered and the window is (nearly) full
        window = self._window = min(self._buffer_size, max(2 * window, end - position, self._min_request))
        want = min(self._size(), max(end, position + window))
        while segments and segments[0].stop <= position and want - segments[0].start > self._buffer_size:
            self._drop(1)
        if segments:
            want = min(want, segments[0].start + self._buffer_size)
        while next_start < want:
            stop = min(next_start + FILL_SEGMENT_SIZE, want)
            segments.append(_Segment(next_start, stop, self._get_stream(next_start, stop)))
            next_start = stop

    def _take(self, segment: _Segment, position: int, end: int, out, at: int, chunks) -> int:
        """Bytes from ``position`` (in ``segment``) up to ``end`` or the segment's end."""
        if segment.data is None and position == segment.start and end >= segment.stop:
            # All of the request's body is wanted: received straight into the caller's memory.
            stream = segment.stream
            self._drop_through(segment)
            got = self._receive(stream, segment.stop - segment.start, out, at, chunks)
            if got < segment.stop - segment.start:
                self._object_ends_at(segment.start + got)
            return got
        if segment.data is None:
            size = segment.stop - segment.start
            pieces: List = []
            got = self._receive(segment.stream, size, None, 0, pieces)
            segment.stream = None
            segment.data = memoryview(pieces[0] if pieces else b"")
            if got < size:
                self._object_ends_at(segment.start + got)
        lo = position - segment.start
        hi = min(end - segment.start, len(segment.data))
        if hi <= lo:
            return 0
        if out is None:
            chunks.append(segment.data[lo:hi])
        else:
            out[at : at + hi - lo] = segment.data[lo:hi]
        return hi - lo

    def _fetch(self, start: int, end: int, piece_size: int, out, at: int, chunks) -> int:
        """Bytes [start, end) as concurrent requests of ``piece_size``, straight to the caller."""
        bounds = [(s, min(s + piece_size, end)) for s in range(start, end, piece_size)]
        streams = [self._get_stream(s, e) for s, e in bounds]  # all in flight before the first wait
        got = 0
        for i, ((s, e), stream) in enumerate(zip(bounds, streams)):
            try:
                n = self._receive(stream, e - s, out, at + got, chunks)
            except BaseException:
                for later in streams[i + 1 :]:
                    _close(later)
                raise
            got += n
            if n < e - s:
                self._object_ends_at(s + n)
                for later in streams[i + 1 :]:
                    _close(later)
                break
        return got

    @staticmethod
    def _receive(stream, size: int, out, at: int, chunks) -> int:
        """A request's body (``size`` bytes asked) into out[at:] or appended to ``chunks``."""
        if out is not None:
            return readinto_full(stream, out[at : at + size])
        read_all_bytes = getattr(stream, "read_all_bytes", None)
        if read_all_bytes is not None:
            body = read_all_bytes()  # received straight into a bytes object
            if len(body) > size:
                body = body[:size]
        else:
            buffer = bytearray(size)
            body = buffer[: readinto_full(stream, memoryview(buffer))]
        if body:
            chunks.append(body)
        return len(body)

    # ------------------------------------------------------------------ the read-ahead's upkeep

    def _drop(self, count: int) -> None:
        """Forgets the first ``count`` segments, cancelling their requests still in flight."""
        segments = self._segments
        for _ in range(count):
            segment = segments.popleft()
            if segment.data is None:
                _close(segment.stream)

    def _drop_through(self, last: _Segment) -> None:
        """Forgets the segments up to ``last`` (whose request the caller goes on to read)."""
        segments = self._segments
        while segments:
            segment = segments.popleft()
            if segment is last:
                return
            if segment.data is None:
                _close(segment.stream)

    def _object_ends_at(self, size: int) -> None:
        """A response was shorter than asked: the object ends at ``size``; nothing past it is read."""
        if self._object_size is None or size < self._object_size:
            self._object_size = size
        segments = self._segments
        while segments and segments[-1].start >= size:
            segment = segments.pop()
            if segment.data is None:
                _close(segment.stream)

    def close(self) -> None:
        """Cancels the read-ahead's requests still in flight and frees what it holds; a closed reader
        raises ValueError on reads and seeks. Closing twice is harmless."""
        if self._segments:
            self._drop(len(self._segments))
        super().close()


def _close(stream) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
