"""SequentialS3Reader: reads an object whole into one buffer, or front to back through one GET."""

import sys
from typing import Any, Callable, Optional

from .forward_stream import ForwardStream
from .s3reader import S3Reader, check_read_size

# Zip archives (torch.save) and other formats keep their index at the end, and read it first: in an
# object larger than TAIL_FETCH_ABOVE, a read in its last TAIL_BYTES that the download has not reached
# yet fetches them on their own, so that it does not wait for the whole object to arrive.
TAIL_BYTES = 1024 * 1024
TAIL_FETCH_ABOVE = 8 * TAIL_BYTES


class SequentialS3Reader(S3Reader):
    """Reads the whole object with one GET. ``read()`` of all of it returns one bytes object, the
    parts received straight into it, without a copy. Reads of pieces return as soon as their own
    bytes are in:

    - an object of at most 8 MiB, or one whose download ``prefetch()`` started, is received whole
      into one buffer that serves every read and seek;
    - a larger one is read front to back through one in-order GET whose parts are fetched ahead,
      each large read copied once from them into the caller's memory (``torch.load`` gets its tensors'
      bytes without a second copy of the checkpoint), a read in the last 1 MiB that the GET has not
      reached yet fetches that tail on its own (a zip's index), and a read further back than the last
      256 KiB read turns to receiving the object whole (one more GET).
    """

    def __init__(self, bucket: str, key: str, get_object_info: Callable, get_stream: Callable):
        super().__init__(bucket, key)
        self._get_object_info = get_object_info
        self._get_stream = get_stream
        self._stream: Any = None  # the whole-object GET: a native GetObjectStream, or the in-memory client's
        self._body: Optional[bytes] = None
        self._landing = False  # the body is still arriving: wait_landed before reading a range of it
        self._forward: Optional[ForwardStream] = None
        self._random = False  # a read went back past the forward stream's window: receive the object whole
        self._tail_start = 0
        self._tail: Optional[bytes] = None

    def prefetch(self) -> None:
        """Starts the GET of the whole object now (datasets call it to fetch objects ahead); the
        object is then received whole, into one buffer that serves every read and seek."""
        if self._stream is None and self._body is None and self._forward is None and not self.closed:
            self._stream = self._get_stream()

    def _started_stream(self):
        self._end_forward()
        self.prefetch()
        return self._stream

    def _end_forward(self) -> None:
        if self._forward is not None:
            self._forward.close()
            self._forward = None

    def _load(self) -> bytes:
        """All of the body: the bytes object itself."""
        if self._body is None:
            self._body = self._started_stream().read_all_bytes()
            self._stream = None
        elif self._landing:
            self._stream.wait_landed(0, len(self._body))
            self._landing = False
        return self._body

    def _begin_pieces(self) -> None:
        """Before a read of a piece, if no download started yet: the GET that suits the object."""
        if self._body is None and self._stream is None and self._forward is None and not self._random:
            forward = ForwardStream(self._get_stream)
            if forward.size <= TAIL_FETCH_ABOVE:  # one part at most: keep it all, for any seek
                self._body = forward.read_rest()
            else:
                self._forward = forward

    def _fill(self, start: int, target: memoryview) -> int:
        """Copies the body's bytes from ``start`` into ``target`` as soon as they are in; how many."""
        self._begin_pieces()
        forward = self._forward
        if forward is not None:
            if forward.can_read(start):
                return self._fill_forward(forward, start, target)
            self._random = True
            self._end_forward()
        data = self._range(start, start + len(target))
        target[: len(data)] = data
        return len(data)

    def _fill_forward(self, forward: ForwardStream, start: int, target: memoryview) -> int:
        size = forward.size
        in_tail = size > TAIL_FETCH_ABOVE and start >= size - TAIL_BYTES
        if in_tail and (self._tail is not None or start >= forward.at):
            data = self._from_tail(start, min(size, start + len(target)), size)
            target[: len(data)] = data
            return len(data)
        return forward.readinto(start, target)

    def _range(self, start: int, end: int) -> memoryview:
        """Bytes [start, end) of the body (clamped to it), as soon as they are in."""
        body = self._body
        if body is None:
            body = self._body = self._started_stream().land_bytes()
            self._landing = True
        size = len(body)
        end = min(end, size)
        if self._landing and start < end and not self._stream.has_landed(start, end):
            if size > TAIL_FETCH_ABOVE and start >= size - TAIL_BYTES:
                return self._from_tail(start, end, size)
            self._stream.wait_landed(start, end)
        return memoryview(body)[start:end]

    def _from_tail(self, start: int, end: int, size: int) -> memoryview:
        if self._tail is None:
            self._tail_start = max(0, size - TAIL_BYTES)
            self._tail = self._get_stream(self._tail_start, size).read_all_bytes()
        return memoryview(self._tail)[start - self._tail_start : end - self._tail_start]

    def _size(self) -> int:
        if self._body is not None:
            return len(self._body)
        if self._forward is not None:
            return self._forward.size
        return self._get_object_info().size

    def get_object_info(self):
        """The object's HeadObjectResult (size, ETag...): one HEAD request unless already known."""
        return self._get_object_info()

    def read(self, size: Optional[int] = None) -> bytes:
        self._check_not_closed()
        size = check_read_size(size)
        if size is None and self._position == 0:
            body = self._load()  # all of it: the body itself, not a copy
            self._position = len(body)
            return body
        self._begin_pieces()
        if self._forward is None:  # a slice of the body, landed or landing: one copy
            end = sys.maxsize if size is None else self._position + size  # the rest: clamped to the body
            data = self._range(self._position, end)
            self._position += len(data)
            return data.tobytes()
        left = self._size() - self._position  # the position never passes the end (resolve_seek)
        buffer = bytearray(left if size is None else min(size, left))
        n = self._fill(self._position, memoryview(buffer))
        self._position += n
        return bytes(memoryview(buffer)[:n])

    def readinto(self, buf) -> int:
        self._check_not_closed()
        n = self._fill(self._position, memoryview(buf).cast("B"))
        self._position += n
        return n

    def close(self) -> None:
        """Cancels the reader's GETs still in flight and frees the object's bytes it holds; a closed
        reader raises ValueError on reads and seeks. Closing twice is harmless."""
        if not self.closed:
            self._end_forward()
            if self._stream is not None:
                self._stream.close()
            self._stream = None
            self._body = None
            self._tail = None
        super().close()
