"""SequentialS3Reader: fetches the whole object once, in parallel parts, into one buffer."""

from typing import Callable, Optional

from .s3reader import S3Reader, check_read_size


class SequentialS3Reader(S3Reader):
    """Reads the whole object into one bytes object (parts are written straight to their offsets
    as they arrive) and serves reads and seeks from it; ``read()`` of all of it returns that
    object without a copy. Best for reading objects whole: samples, checkpoints.
    """

    def __init__(self, bucket: str, key: str, get_object_info: Callable, get_stream: Callable):
        super().__init__(bucket, key)
        self._get_object_info = get_object_info
        self._get_stream = get_stream
        self._stream = None
        self._body: Optional[bytes] = None
        self._view: Optional[memoryview] = None

    def prefetch(self) -> None:
        if self._stream is None and self._body is None and not self.closed:
            self._stream = self._get_stream()

    def _load(self) -> memoryview:
        if self._body is None:
            self.prefetch()
            self._body = self._stream.read_all_bytes()
            self._view = memoryview(self._body)
            self._stream = None
        return self._view

    def _size(self) -> int:
        if self._body is not None:
            return len(self._body)
        return self._get_object_info().size

    def get_object_info(self):
        return self._get_object_info()

    def read(self, size: Optional[int] = None) -> bytes:
        self._check_not_closed()
        size = check_read_size(size)
        body = self._load()
        end = len(body) if size is None else min(len(body), self._position + size)
        if end <= self._position:
            return b""
        data = self._body if (self._position, end) == (0, len(body)) else body[self._position : end].tobytes()
        self._position = end
        return data

    def readinto(self, buf) -> int:
        self._check_not_closed()
        target = memoryview(buf).cast("B")
        body = self._load()
        n = max(0, min(len(target), len(body) - self._position))
        target[:n] = body[self._position : self._position + n]
        self._position += n
        return n

    def close(self) -> None:
        if not self.closed:
            if self._stream is not None:
                self._stream.close()
            self._stream = None
            self._body = None
            self._view = None
        super().close()
