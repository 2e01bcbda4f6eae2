"""SequentialS3Reader: fetches the whole object once, in parallel parts, into one buffer."""

import io
from typing import Callable, Optional

from .s3reader import S3Reader, check_read_size, resolve_seek


class SequentialS3Reader(S3Reader):
    """Reads the whole object into one native buffer (parts are written straight to their
    offsets as they arrive) and serves reads and seeks from it. Best for reading objects whole:
    samples, checkpoints.
    """

    def __init__(self, bucket: str, key: str, get_object_info: Callable, get_stream: Callable):
        super().__init__(bucket, key)
        self._get_object_info = get_object_info
        self._get_stream = get_stream
        self._stream = None
        self._body: Optional[memoryview] = None
        self._position = 0

    def prefetch(self) -> None:
        if self._stream is None and self._body is None and not self.closed:
            self._stream = self._get_stream()

    def _load(self) -> memoryview:
        if self._body is None:
            self.prefetch()
            self._body = memoryview(self._stream.read_all())
            self._stream = None
        return self._body

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
        data = body[self._position : end].tobytes()
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

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        self._check_not_closed()
        self._position = resolve_seek(offset, whence, self._position, self._size)
        return self._position

    def tell(self) -> int:
        self._check_not_closed()
        return self._position

    def close(self) -> None:
        if not self.closed:
            if self._stream is not None:
                self._stream.close()
            self._stream = None
            self._body = None
        super().close()
