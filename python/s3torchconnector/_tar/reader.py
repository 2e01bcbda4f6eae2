"""The regular files of a tar stream, read strictly in one pass: plain, gzip, bzip2 or xz.

tarfile's stream mode spends about 30 us of Python per member (every block goes through its own
buffer, and every header field is decoded): shards of 4 KiB samples of two members each read at
17,000 samples a second from memory, and at 54,000 here, where a header is a few slices and a
file's bytes are one read.

It reads the formats tarfile and GNU tar write, as tarfile reads them: ustar (a name longer than
100 bytes split into its prefix field), GNU long names, and pax headers for the next member (path,
size) and for all of them. Only the zero block that ends every tar ends it: a stream cut short or a
damaged header raises ``BrokenTar``, which says where; a tar never ends early and quietly. A compressed
tar is read to the end of its compressed stream, whose checksum covers every byte: damage that
decompresses to other bytes raises there, after the members before it were given.
"""

import bz2
import gzip
import io
import lzma
import re
import zlib
from typing import Callable, Dict, Iterator, NamedTuple, Optional

BLOCK = 512
_END = bytes(BLOCK)  # the zero block that ends the archive
_CHECKSUM = slice(148, 156)

_REGULAR = (b"0", b"\0", b"7")  # a file, an old-style file, a contiguous file
_NO_DATA = (b"1", b"2", b"3", b"4", b"5", b"6")  # links, devices, directories, FIFOs: tarfile reads no data for them
_GNU_LONG_NAME, _GNU_LONG_LINK, _GNU_SPARSE = b"L", b"K", b"S"
_PAX_NEXT, _PAX_NEXT_SOLARIS, _PAX_ALL = b"x", b"X", b"g"
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
# What the stream or its decompressor raises for bytes that are not a whole compressed stream.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


class BrokenTar(Exception):
    """Why the stream is not a readable tar, and the byte offset of the member where it broke."""

    def __init__(self, problem: str, offset: int):
        super().__init__(problem)
        self.offset = offset


class TarMember(NamedTuple):
    name: str
    offset: int  # of its first header block (its pax or long-name header, if it has one)
    read: Callable[[], bytes]  # its bytes, read from the stream at the first call
    end: int  # where it ends: after its data and the zeros that pad it to a whole block


# The fields of a pax header that change which member is read and how (sparse ones are refused anyway).
READING_FIELDS = ("path", "size")


def regular_files(
    fileobj, *, start: int = 0, on_global_header: Optional[Callable[[Dict[str, str], int], None]] = None
) -> Iterator[TarMember]:
    """Each regular file of the tar in ``fileobj``, in order; other members are skipped. A member's
    name comes before its bytes are read, and bytes not read are skipped when the next is asked
    for. Compression is recognised by its magic bytes, as tarfile's ``r|*`` does.

    ``start``: where ``fileobj``'s first byte is in the tar (a byte range of it read alone): offsets,
    in members and errors, count from it. ``on_global_header(records, offset)`` is told of each
    global pax header, whose records apply to every member after it."""
    decompressed, compressed = _decompressed(fileobj)
    source = _Counted(decompressed, start)
    offset = start
    try:
        every_member: Dict[str, str] = {}  # from global pax headers
        while True:
            offset = source.position
            own: Dict[str, str] = {}  # from this member's pax and long-name headers: the first to set a field wins
            while True:
                header = _header(source, offset)
                if header is None:
                    if own:
                        raise BrokenTar("it ends after a pax or long-name header, without its member", offset)
                    if compressed:
                        # The compressed stream's checksum, at its end, covers every byte read: read to it.
                        while source.read(64 * 1024):
                            pass
                    return
                kind = header[156:157]
                if kind not in (_GNU_LONG_NAME, _GNU_LONG_LINK, _PAX_NEXT, _PAX_NEXT_SOLARIS, _PAX_ALL):
                    break
                payload = source.read_whole(_number(header[124:136], offset), offset)
                if kind == _GNU_LONG_NAME:
                    own.setdefault("path", _text(payload.split(b"\0", 1)[0]))
                elif kind == _PAX_ALL:
                    records = _pax_records(payload, offset)
                    every_member.update(records)
                    if on_global_header is not None:
                        on_global_header(records, offset)
                elif kind != _GNU_LONG_LINK:
                    for field, value in _pax_records(payload, offset).items():
                        own.setdefault(field, value)
            fields = {**every_member, **own}
            if kind == _GNU_SPARSE or any(field.startswith("GNU.sparse.") for field in fields):
                raise BrokenTar("a sparse member, which tar shards cannot hold", offset)
            size = _pax_size(fields["size"], offset) if "size" in fields else _number(header[124:136], offset)
            if kind in _REGULAR:
                name = fields.get("path", "").rstrip("/") or _ustar_name(header)
                data = _Data(source, size, offset)
                yield TarMember(name, offset, data.read, source.position + size + -size % BLOCK)
                data.read()
            elif kind not in _NO_DATA:  # a type tarfile does not know: its data is skipped
                source.read_whole(size, offset)
    except _STREAM_ERRORS as error:  # of the decompressor or the stream
        raise BrokenTar(str(error), offset) from None


def _header(source: "_Counted", offset: int) -> Optional[bytes]:
    """The next header block, checked; None for the zero block that ends the archive."""
    header = source.read(BLOCK)
    if len(header) < BLOCK:
        raise BrokenTar("it ends where a member's header should be: truncated", offset)
    if header == _END:
        return None
    checksum = _number(header[_CHECKSUM], offset)
    unsigned = sum(header) - sum(header[_CHECKSUM]) + 8 * 0x20  # the checksum field counts as spaces
    if checksum != unsigned:
        high = sum(1 for i, byte in enumerate(header) if byte >= 0x80 and not 148 <= i < 156)
        if checksum != unsigned - 0x100 * high:  # some old tars summed signed bytes
            raise BrokenTar("a damaged member header (bad checksum)", offset)
    return header


def _number(field: bytes, offset: int) -> int:
    """A header's number: octal text, or GNU's base-256 for values that do not fit."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[0] == 0xFF else value
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        raise BrokenTar("a damaged member header (invalid header)", offset) from None


def _ustar_name(header: bytes) -> str:
    name = _text(header[:100].split(b"\0", 1)[0])
    prefix = _text(header[345:500].split(b"\0", 1)[0])
    return f"{prefix}/{name}" if prefix else name


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _pax_records(payload: bytes, offset: int) -> Dict[str, str]:
    """The "LENGTH FIELD=VALUE\\n" records of a pax header."""
    records = {}
    at = 0
    while match := _PAX_RECORD.match(payload, at):
        length = int(match.group(1))
        if length == 0:
            raise BrokenTar("a damaged pax header (a record of length 0)", offset)
        value = payload[match.end() : match.start(1) + length - 1]
        records[_text(match.group(2))] = _text(value)
        at += length
    return records


def _pax_size(value: str, offset: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise BrokenTar(f"a damaged pax header (size {value!r})", offset) from None


def compression(fileobj) -> Optional[str]:
    """ "gzip", "bzip2" or "xz" when the bytes ahead in ``fileobj`` (which can ``peek``) start with
    that compressor's magic bytes; None for a plain tar."""
    magic = fileobj.peek(6)[:6]
    if magic.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if magic.startswith(b"BZh91"):
        return "bzip2"
    if magic.startswith((b"\xfd7zXZ\x00", b"\x5d\x00\x00\x80\x00")):
        return "xz"
    return None


def _decompressed(fileobj):
    """The tar's bytes, and whether they come through a decompressor."""
    if not hasattr(fileobj, "peek"):
        fileobj = io.BufferedReader(fileobj)
    kind = compression(fileobj)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=fileobj, mode="rb"), True
    if kind == "bzip2":
        return bz2.BZ2File(fileobj), True
    if kind == "xz":
        return lzma.LZMAFile(fileobj), True
    return fileobj, False


class _Data:
    """A member's bytes, read once."""

    def __init__(self, source: "_Counted", size: int, offset: int):
        self._source, self._size, self._offset = source, size, offset
        self._data: Optional[bytes] = None

    def read(self) -> bytes:
        if self._data is None:
            try:
                self._data = self._source.read_whole(self._size, self._offset)
            except _STREAM_ERRORS as error:  # the caller reads outside regular_files' own handling
                raise BrokenTar(str(error), self._offset) from None
        return self._data


class _Counted:
    """Reads from a file, counting the bytes of the (uncompressed) tar read so far."""

    def __init__(self, fileobj, start: int = 0):
        self._read = fileobj.read
        self.position = start

    def read(self, size: int) -> bytes:
        data = self._read(size)
        self.position += len(data)
        return data

    def read_whole(self, size: int, offset: int) -> bytes:
        """A member's ``size`` bytes of data, then the zeros that pad it to a whole block."""
        if size < 0:
            raise BrokenTar("a damaged member header (a negative size)", offset)
        data = self.read(size)
        padding = -size % BLOCK
        if len(data) < size or len(self.read(padding)) < padding:
            raise BrokenTar("unexpected end of data", offset)
        return data
