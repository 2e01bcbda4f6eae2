"""S3Reader: the file-like interface every reader strategy implements."""

import io
from abc import abstractmethod
from typing import Optional


class S3Reader(io.BufferedIOBase):
    """A read-only, seekable file over one S3 object. Requests start at the first read."""

    def __init__(self, bucket: str, key: str):
        super().__init__()
        self._bucket = bucket
        self._key = key
        self._position = 0

    @property
    def bucket(self) -> str:
        """The bucket of the object read."""
        return self._bucket

    @property
    def key(self) -> str:
        """The key of the object read."""
        return self._key

    @property
    def uri(self) -> str:
        """The object as ``s3://bucket/key``, as error messages name it."""
        return f"s3://{self._bucket}/{self._key}"

    def prefetch(self) -> None:
        """Start fetching now, so a later read waits less. Readers that fetch on demand ignore it."""

    @abstractmethod
    def read(self, size: Optional[int] = None) -> bytes:
        """Reads up to ``size`` bytes from the current position, all the rest when ``size`` is None or
        negative, and moves past them; ``b""`` at the end of the object. A ``size`` that is not an int
        raises TypeError, a closed reader ValueError, a failed request S3Exception (ObjectChangedError
        when the object was overwritten since this reader's first response)."""

    @abstractmethod
    def readinto(self, buf) -> int:
        """Reads into ``buf`` (any writable bytes-like object: bytearray, memoryview, numpy array...)
        from the current position, as many bytes as it holds or as the object has left, and moves past
        them; returns how many, 0 at the end of the object. A read-only buffer raises TypeError; otherwise
        it raises as :meth:`read` does."""

    @abstractmethod
    def _size(self) -> int:
        """The object's size, fetched only when a seek needs it."""

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        """Moves to ``offset`` from the start (``io.SEEK_SET``), the current position (``io.SEEK_CUR``)
        or the end (``io.SEEK_END``) and returns the new position. Sends no request, except to learn the
        object's size (one HEAD, unless it is known) when seeking from the end or forward; a position
        past the end is the end. A position before the start or another ``whence`` raises ValueError,
        an ``offset`` that is not an int TypeError."""
        self._check_not_closed()
        self._position = resolve_seek(offset, whence, self._position, self._size)
        return self._position

    def tell(self) -> int:
        """The current position, in bytes from the start of the object."""
        self._check_not_closed()
        return self._position

    def read1(self, size: int = -1) -> bytes:
        """The same as :meth:`read`."""
        return self.read(size)

    def readinto1(self, buf) -> int:
        """The same as :meth:`readinto`."""
        return self.readinto(buf)

    def readable(self) -> bool:
        """True; ValueError once the reader is closed."""
        self._check_not_closed()
        return True

    def seekable(self) -> bool:
        """True: every reader seeks; ValueError once the reader is closed."""
        self._check_not_closed()
        return True

    def writable(self) -> bool:
        """False: an S3 object is written with an S3Writer."""
        return False

    def _check_not_closed(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on a closed S3Reader ({self.uri})")


def check_read_size(size) -> Optional[int]:
    """read(size) takes None or an int; negative means 'to the end'. Returns None for 'to the end'."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"read size must be an int or None, got {type(size).__name__}")
    return None if size < 0 else size


def readinto_full(stream, view: memoryview) -> int:
    """Fills ``view`` from a GET stream unless the stream ends first; returns how much it got."""
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def resolve_seek(offset, whence, position: int, size_of) -> int:
    """The new position for seek(offset, whence), kept within [0, size] like the original reader.

    ``size_of`` is called only when the object's size is needed.
    """
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(f"seek offset must be an int, got {type(offset).__name__}")
    if whence == io.SEEK_SET:
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        target = offset
    elif whence == io.SEEK_CUR:
        target = position + offset
    elif whence == io.SEEK_END:
        target = size_of() + offset
    else:
        raise ValueError(f"invalid whence ({whence}): use io.SEEK_SET, io.SEEK_CUR or io.SEEK_END")
    if target < 0:
        raise ValueError(f"seek would move before the start of the object (position {target})")
    if target <= position:  # the position is never past the end, so neither is this
        return target
    return min(target, size_of())
