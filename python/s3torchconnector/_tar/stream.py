"""Tar members written one after another into a file that cannot seek (an S3Writer).

Each member is its header (PAX format: long and non-ASCII names keep their exact text), its data,
and zeros up to the next 512-byte block; the archive ends with two zero blocks. Headers are made
before anything is written, so a caller knows exactly how many bytes a member will take.
"""

import tarfile

BLOCK = tarfile.BLOCKSIZE
END_OF_ARCHIVE = 2 * BLOCK
_ZEROS = bytes(END_OF_ARCHIVE)
_FLUSH_AT = 1 << 20  # small pieces are gathered into writes of about this size...
_WRITE_DIRECTLY = 1 << 18  # ...and large ones go straight to the file, without a copy


def member_header(name: str, size: int, mtime: int) -> bytes:
    """The header blocks of a regular file ``name`` of ``size`` bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o444
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def member_size(header: bytes, size: int) -> int:
    """Bytes a member takes in the archive: header, data and padding to a whole block."""
    return len(header) + size + padding(size)


def padding(size: int) -> int:
    return -size % BLOCK


class TarStream:
    """Writes members to ``out`` as they come; ``size`` counts every byte handed to it so far."""

    def __init__(self, out):
        self._out = out
        self._pending = bytearray()
        self.size = 0

    def write_member(self, header: bytes, data: memoryview) -> None:
        """``data`` must be a flat byte view (format "B") whose length is the header's size."""
        self._put(header)
        self._put(data)
        self._put(_ZEROS[: padding(len(data))])

    def close(self) -> None:
        """Ends the archive and hands over what is still gathered; ``out`` stays open."""
        self._put(_ZEROS)
        self._flush()

    def _put(self, data) -> None:
        size = len(data)
        self.size += size
        if size >= _WRITE_DIRECTLY:
            self._flush()
            self._out.write(data)
            return
        self._pending += data
        if len(self._pending) >= _FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._out.write(self._pending)
            self._pending = bytearray()
