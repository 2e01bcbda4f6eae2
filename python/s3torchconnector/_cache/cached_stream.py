"""A cached entry read the way the native GetObjectStream is read, every block checked before use.

A block whose bytes no longer match their checksum drops the entry and the rest of the read comes
from S3, at the same version (the fallback is pinned to the entry's ETag): the reader sees the right
bytes either way.
"""

import os
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, cast

from .. import _native
from .entry_format import BLOCK_SIZE, HEADER_SIZE, EntryHeader, block_checksums

_MAX_PREAD = 1 << 30  # Linux returns at most 0x7ffff000 bytes per read


@dataclass
class OpenEntry:
    """An entry open for reading (a shared lock held on ``fd``: eviction leaves it alone)."""

    fd: int
    path: str
    header: EntryHeader
    checksums: List[int]


@dataclass(frozen=True)
class CachedObjectInfo:
    """What ``info()`` of a native stream says, for an entry: the cache keeps no dates or classes."""

    key: str
    etag: str
    size: int
    last_modified: str = ""
    storage_class: str = ""
    restore: str = ""


class CachedStream:
    """Bytes [start, end) of a cached object; the same methods as ``_native.GetObjectStream``."""

    def __init__(
        self,
        entry: OpenEntry,
        bucket: str,
        start: Optional[int],
        end: Optional[int],
        from_s3: Callable[[int, int], "_native.GetObjectStream"],
        on_damage: Callable[[OpenEntry], None],
        on_bytes: Callable[[int], None],
        preloaded: Optional[bytes] = None,
    ):
        self._entry = entry
        self._preloaded = preloaded  # the whole object, as this process just wrote and checked it
        self._bucket = bucket
        size = entry.header.size
        self._position = min(start or 0, size)
        self._end = size if end is None else max(self._position, min(end, size))
        self._from_s3 = from_s3
        self._on_damage = on_damage
        self._on_bytes = on_bytes
        self._s3: Optional["_native.GetObjectStream"] = None  # the rest of the read, once the entry failed a check
        self._block_index = -1
        self._block = memoryview(b"")
        self._closed = False

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def key(self) -> str:
        return self._entry.header.key

    def info(self) -> CachedObjectInfo:
        header = self._entry.header
        return CachedObjectInfo(header.key, header.etag, header.size)

    def tell(self) -> int:
        return self._s3.tell() if self._s3 is not None else self._position

    def read_all_bytes(self) -> bytes:
        self._check_open()
        if self._s3 is not None:
            return self._s3.read_all_bytes()
        start, end = self._position, self._end
        if self._preloaded is not None and start == 0 and end == len(self._preloaded):
            self._position = end
            return self._preloaded
        if start % BLOCK_SIZE or (end % BLOCK_SIZE and end != self._entry.header.size):
            whole = bytearray(end - start)  # not on block boundaries: through the checked blocks
            got = self.readinto(whole)
            return bytes(memoryview(whole)[:got])
        data = self._pread(start, end - start)
        if len(data) != end - start or not self._blocks_match(data, start):
            return self._switch_to_s3().read_all_bytes()
        self._position = end
        self._on_bytes(len(data))
        return data

    def _blocks_match(self, data: bytes, start: int) -> bool:
        """Whether ``data``, the object's bytes from ``start`` (a block boundary), match their checksums."""
        first = start // BLOCK_SIZE
        computed = block_checksums(memoryview(data))
        return computed == self._entry.checksums[first : first + len(computed)]

    def land_bytes(self) -> bytes:
        return self.read_all_bytes()  # from local disk every byte is there at once

    def wait_landed(self, start: int, end: int) -> None:
        self._check_open()

    def has_landed(self, start: int, end: int) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._check_open()
        target = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(target) and self._position < self._end:
            if self._s3 is not None:
                return filled + self._s3.readinto(target[filled:])
            block = self._checked_block(self._position // BLOCK_SIZE)
            if block is None:
                continue  # now reading from S3
            offset = self._position % BLOCK_SIZE
            n = min(len(target) - filled, len(block) - offset, self._end - self._position)
            target[filled : filled + n] = block[offset : offset + n]
            filled += n
            self._position += n
        self._on_bytes(filled)
        return filled

    def next_chunk(self) -> Optional[bytes]:
        self._check_open()
        while self._s3 is None and self._position < self._end:
            block = self._checked_block(self._position // BLOCK_SIZE)
            if block is None:
                break
            offset = self._position % BLOCK_SIZE
            chunk = block[offset : min(len(block), offset + self._end - self._position)].tobytes()
            self._position += len(chunk)
            self._on_bytes(len(chunk))
            return chunk
        if self._s3 is not None:
            native = self._s3.next_chunk()
            return None if native is None else bytes(cast(Any, native))
        return None

    def __iter__(self) -> "CachedStream":
        return self

    def __next__(self) -> bytes:
        chunk = self.next_chunk()
        if chunk is None:
            raise StopIteration
        return chunk

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._block = memoryview(b"")
            self._preloaded = None
            os.close(self._entry.fd)  # and with it the shared lock
        if self._s3 is not None:
            self._s3.close()

    def __del__(self):
        # A reader dropped without close() must not keep its entry locked against eviction.
        if not getattr(self, "_closed", True):
            self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the stream is closed")

    def _checked_block(self, index: int) -> Optional[memoryview]:
        """Block ``index`` if its bytes match their checksum; else None, and the read goes on from S3."""
        if index != self._block_index:
            at = index * BLOCK_SIZE
            length = min(BLOCK_SIZE, self._entry.header.size - at)
            if self._preloaded is not None:
                self._block_index, self._block = index, memoryview(self._preloaded)[at : at + length]
                return self._block
            block = self._pread(at, length)
            if len(block) != length or _native.crc32c(block) != self._entry.checksums[index]:
                self._switch_to_s3()
                return None
            self._block_index, self._block = index, memoryview(block)
        return self._block

    def _switch_to_s3(self) -> "_native.GetObjectStream":
        self._on_damage(self._entry)
        self._s3 = self._from_s3(self._position, self._end)
        return self._s3

    def _pread(self, start: int, length: int) -> bytes:
        data: bytes
        if length <= _MAX_PREAD:
            data = os.pread(self._entry.fd, length, HEADER_SIZE + start)
        else:
            whole = bytearray(length)
            view = memoryview(whole)
            got = 0
            while got < length:
                n = os.preadv(self._entry.fd, [view[got : got + _MAX_PREAD]], HEADER_SIZE + start + got)
                if n == 0:
                    break
                got += n
            data = bytes(view[:got])
        return data  # shorter than asked if the file was cut: the callers' checks catch it
