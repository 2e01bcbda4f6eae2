"""The file of one cached object version.

    [header: HEADER_SIZE bytes][the object's bytes][the checksums, when the header has no room for them]

The header holds, little-endian: a magic; the CRC32C of the rest of the header; the object's size;
the SHA-256 of the endpoint; the lengths of bucket, key and ETag, then those names in UTF-8; then a
CRC32C per BLOCK_SIZE block of the object, unless they do not fit (objects of more than about
600 MiB), in which case they follow the object's bytes. Zeros pad it. The object's bytes start
page-aligned. A file is written whole under another name and renamed into place, so an entry is
complete or absent; the checksums catch what the disk changed later.
"""

import functools
import hashlib
import struct
from dataclasses import dataclass
from typing import List, Optional, Tuple

from .. import _native

HEADER_SIZE = 4096
BLOCK_SIZE = 1 << 20
_MAGIC = b"S3TCE002"
_FIXED = struct.Struct("<8sIQ32sHHH")  # magic, CRC32C of what follows it, size, endpoint hash, name lengths
_CHECKED_FROM = 12  # the header's CRC32C covers everything after the magic and itself
_MAX_NAME = 1024  # S3's longest key, in bytes; longer names (other servers) are not cached


@dataclass(frozen=True)
class EntryHeader:
    """What one entry holds: the version of an object (endpoint, bucket, key, ETag) and its size."""

    endpoint: str
    bucket: str
    key: str
    etag: str
    size: int


@functools.lru_cache(maxsize=16)
def endpoint_hash(endpoint: str) -> bytes:
    return hashlib.sha256(endpoint.encode("utf-8")).digest()


def block_count(size: int) -> int:
    return (size + BLOCK_SIZE - 1) // BLOCK_SIZE


def _names(header: EntryHeader) -> Tuple[bytes, bytes, bytes]:
    return header.bucket.encode("utf-8"), header.key.encode("utf-8"), header.etag.encode("utf-8")


def cacheable(header: EntryHeader) -> bool:
    """Whether the object's names fit a header (any object S3 itself names does)."""
    return all(len(name) <= _MAX_NAME for name in _names(header))


def checksums_inline(header: EntryHeader) -> bool:
    return _inline(sum(map(len, _names(header))), header.size)


def _inline(names_length: int, size: int) -> bool:
    return _FIXED.size + names_length + 4 * block_count(size) <= HEADER_SIZE


def entry_file_size(header: EntryHeader) -> int:
    """The bytes on disk of the entry's file."""
    return _file_size(checksums_inline(header), header.size)


def _file_size(inline: bool, size: int) -> int:
    return HEADER_SIZE + size + (0 if inline else 4 * block_count(size))


def encode(header: EntryHeader, checksums: List[int]) -> Tuple[bytes, bytes]:
    """The header block, and the checksums to write after the object's bytes (b"" when inline)."""
    bucket, key, etag = _names(header)
    table = struct.pack(f"<{len(checksums)}I", *checksums)
    inline = checksums_inline(header)
    body = struct.pack("<Q32sHHH", header.size, endpoint_hash(header.endpoint), len(bucket), len(key), len(etag))
    body += bucket + key + etag + (table if inline else b"")
    block = (_MAGIC + struct.pack("<I", _native.crc32c(body)) + body).ljust(HEADER_SIZE, b"\0")
    return block, b"" if inline else table


def decode(raw: bytes, endpoint: str) -> Tuple[EntryHeader, Optional[List[int]], int]:
    """The header of an entry, its checksums when inline (None: they follow the object's bytes), and
    the size its file must have. ValueError if it is not an entry of this format, or changed on
    disk, or is another endpoint's."""
    if len(raw) != HEADER_SIZE:
        raise ValueError("short header")
    magic, _, size, endpoint_sha, bucket_len, key_len, etag_len = _FIXED.unpack_from(raw)
    names_end = _FIXED.size + bucket_len + key_len + etag_len
    if magic != _MAGIC or max(bucket_len, key_len, etag_len) > _MAX_NAME:
        raise ValueError("not a cache entry of this format")
    at = _FIXED.size
    bucket = raw[at : at + bucket_len].decode("utf-8", "replace")
    key = raw[at + bucket_len : at + bucket_len + key_len].decode("utf-8", "replace")
    etag = raw[at + bucket_len + key_len : names_end].decode("utf-8", "replace")
    header = EntryHeader(endpoint, bucket, key, etag, size)
    inline = _inline(names_end - _FIXED.size, size)
    table_end = names_end + (4 * block_count(size) if inline else 0)
    if _native.crc32c(memoryview(raw)[_CHECKED_FROM:table_end]) != struct.unpack_from("<I", raw, 8)[0]:
        raise ValueError("the entry's header changed on disk")
    if endpoint_sha != endpoint_hash(endpoint):
        raise ValueError("the entry is another endpoint's")
    checksums = decode_checksums(raw[names_end:table_end]) if inline else None
    return header, checksums, _file_size(inline, size)


def block_checksums(data: memoryview) -> List[int]:
    """The CRC32C of each BLOCK_SIZE block of ``data``, which starts at a block boundary."""
    return [_native.crc32c(data[at : at + BLOCK_SIZE]) for at in range(0, len(data), BLOCK_SIZE)]


def decode_checksums(raw: bytes) -> List[int]:
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))
