"""SequentialS3Reader: fetches the whole object once, in parallel parts, into one buffer."""

import sys
from typing import Any, Callable, Optional

from .s3reader import S3Reader, check_read_size

# Zip archives (torch.save) and other formats keep their index at the end, and read it first: in an
# object larger than TAIL_FETCH_ABOVE, a read in its last TAIL_BYTES that has not landed yet fetches
# them on their own, so that it does not wait for the whole object to arrive.
TAIL_BYTES = 1024 * 1024
TAIL_FETCH_ABOVE = 8 * TAIL_BYTES


class SequentialS3Reader(S3Reader):
    """Reads the whole object once into one bytes object (parts written straight to their offsets
    as they arrive) and serves reads and seeks from it. ``read()`` of all of it returns that object
    without a copy. Any other first read starts the download and returns as soon as its own bytes
    are in, the rest landing in the background: ``torch.load`` of a checkpoint unpickles its first
    tensors while the last are on their way. Best for reading objects whole: samples, checkpoints.
    """

    def __init__(self, bucket: str, key: str, get_object_info: Callable, get_stream: Callable):
        super().__init__(bucket, key)
        self._get_object_info = get_object_info
        self._get_stream = get_stream
        self._stream: Any = None  # the whole-object GET: a native GetObjectStream, or the in-memory client's
        self._body: Optional[bytes] = None
        self._landing = False  # the body is still arriving: wait_landed before reading a range of it
        self._tail_start = 0
        self._tail: Optional[bytes] = None

    def prefetch(self) -> None:
        if self._stream is None and self._body is None and not self.closed:
            self._stream = self._get_stream()

    def _started_stream(self):
        self.prefetch()
        return self._stream

    def _load(self) -> bytes:
        """All of the body: the bytes object itself."""
        if self._body is None:
            self._body = self._started_stream().read_all_bytes()
            self._stream = None
        elif self._landing:
            self._stream.wait_landed(0, len(self._body))
            self._landing = False
        return self._body

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
        return self._get_object_info().size

    def get_object_info(self):
        return self._get_object_info()

    def read(self, size: Optional[int] = None) -> bytes:
        self._check_not_closed()
        size = check_read_size(size)
        if size is None and self._position == 0:
            body = self._load()  # all of it: the body itself, not a copy
            self._position = len(body)
            return body
        end = sys.maxsize if size is None else self._position + size  # the rest: clamped to the body
        data = self._range(self._position, end)
        self._position += len(data)
        return data.tobytes()

    def readinto(self, buf) -> int:
        self._check_not_closed()
        target = memoryview(buf).cast("B")
        data = self._range(self._position, self._position + len(target))
        target[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            if self._stream is not None:
                self._stream.close()
            self._stream = None
            self._body = None
            self._tail = None
        super().close()
