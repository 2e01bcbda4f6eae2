"""The file of one cached object version.

    [header: HEADER_SIZE bytes][the object's bytes][a CRC32C per BLOCK_SIZE block, 4 bytes each]

The header holds a magic, the length and CRC32C of a JSON text naming the object (endpoint, bucket,
key, ETag, size), that text, and zeros. The object's bytes start page-aligned. A file is written
whole under another name and then renamed into place, so an entry is either complete or absent;
the checksums catch what the disk changed later.
"""

import json
import struct
from dataclasses import dataclass
from typing import List

from .. import _native

HEADER_SIZE = 4096
BLOCK_SIZE = 1 << 20
_MAGIC = b"S3TCE001"
_PREFIX = struct.Struct("<8sII")  # magic, JSON length, CRC32C of the JSON


@dataclass(frozen=True)
class EntryHeader:
    """What one entry holds: the version of an object (endpoint, bucket, key, ETag) and its size."""

    endpoint: str
    bucket: str
    key: str
    etag: str
    size: int

    def encode(self) -> bytes:
        text = json.dumps(
            {"endpoint": self.endpoint, "bucket": self.bucket, "key": self.key, "etag": self.etag, "size": self.size},
            ensure_ascii=False,
        ).encode("utf-8")
        header = _PREFIX.pack(_MAGIC, len(text), _native.crc32c(text)) + text
        if len(header) > HEADER_SIZE:
            raise ValueError("the object's name is too long for a cache entry header")
        return header.ljust(HEADER_SIZE, b"\0")


def decode_header(raw: bytes) -> EntryHeader:
    """The header of an entry; ValueError if it is not one (another format, torn, or changed on disk)."""
    if len(raw) < _PREFIX.size:
        raise ValueError("short header")
    magic, length, crc = _PREFIX.unpack_from(raw)
    text = raw[_PREFIX.size : _PREFIX.size + length]
    if magic != _MAGIC or len(text) != length or _native.crc32c(text) != crc:
        raise ValueError("not a cache entry of this format, or its header changed on disk")
    try:
        fields = json.loads(text)
        return EntryHeader(fields["endpoint"], fields["bucket"], fields["key"], fields["etag"], int(fields["size"]))
    except (KeyError, TypeError) as error:
        raise ValueError(f"the entry header lacks {error}") from None


def block_count(size: int) -> int:
    return (size + BLOCK_SIZE - 1) // BLOCK_SIZE


def entry_file_size(size: int) -> int:
    """The bytes on disk of an entry for an object of ``size`` bytes."""
    return HEADER_SIZE + size + 4 * block_count(size)


def block_checksums(data: memoryview) -> List[int]:
    """The CRC32C of each BLOCK_SIZE block of ``data``, which starts at a block boundary."""
    return [_native.crc32c(data[at : at + BLOCK_SIZE]) for at in range(0, len(data), BLOCK_SIZE)]


def encode_checksums(checksums: List[int]) -> bytes:
    return struct.pack(f"<{len(checksums)}I", *checksums)


def decode_checksums(raw: bytes) -> List[int]:
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))
