"""The index of a tar shard: the byte range of each of its samples, so that one ranged GET reads
any one of them (``S3MapDataset(shard_format="tar")``).

ShardWriter writes it beside each shard it completes, as a small JSON object, the *sidecar*, whose
key is the shard's key followed by ``.index.json`` (``INDEX_SUFFIX``): ``train-000000.tar`` has
``train-000000.tar.index.json``. Other tools may write it too; its format (version 1)::

    {
      "format": "s3torchconnector.tar-index",
      "version": 1,
      "shard": {"etag": "\\"9b2cf535f27731c974343645a3985328\\"", "size": 30720},
      "samples": [[0, 10240], [10240, 20480], [20480, 29696]]
    }

- ``shard``: the shard the index describes: its ``etag`` exactly as S3 returns it (quotes included)
  and its ``size`` in bytes. An index whose ETag or size is not the shard's is never used (the
  shard was written again since): the reader then indexes the shard by reading it.
- ``samples``: ``[start, end]`` for each sample, in the shard's order: byte offsets in the plain
  (uncompressed) tar, from the first header block of the sample's first member (its pax or GNU
  long-name header included) to the end of the zeros that pad its last member's data; both are
  multiples of 512. Ranges increase and do not overlap: 0 <= start < end <= size, each start at or
  after the end before it. Members readers skip (directories, names without an extension...) may
  lie within a range or between ranges; the end-of-archive blocks are in none.
- A sample is WebDataset's: the consecutive members with one key (see ``samples``).

Other fields are ignored. An index that does not read as this (not JSON, a field missing or of
another type, ranges out of order) is ignored, with a warning, and the shard indexed by reading it.
A compressed shard has no index: its samples cannot be read at random.
"""

import io
import json
from array import array
from typing import Dict, List, Optional, Tuple

from .reader import BLOCK, READING_FIELDS, BrokenTar, compression, regular_files
from .samples import not_readable, sample_members

INDEX_SUFFIX = ".index.json"
FORMAT = "s3torchconnector.tar-index"
VERSION = 1


class DamagedIndex(ValueError):
    """An index that does not read as the format says; the message says what is wrong."""


class ShardIndex:
    """The byte range of each sample of one version of a shard (its ETag and size): ``bounds`` holds
    each sample's start and end, one after the other (16 bytes a sample, no object per sample)."""

    __slots__ = ("etag", "size", "bounds")

    def __init__(self, etag: str, size: int, bounds: "array[int]"):
        self.etag = etag
        self.size = size
        self.bounds = bounds

    @property
    def sample_count(self) -> int:
        return len(self.bounds) // 2

    def sample_range(self, n: int) -> Tuple[int, int]:
        """[start, end) of the ``n``-th sample."""
        return self.bounds[2 * n], self.bounds[2 * n + 1]

    def describes(self, etag: str, size: int) -> bool:
        """Whether this is the index of the shard's version whose ETag and size are these."""
        return same_etag(self.etag, etag) and self.size == size

    def to_json(self) -> bytes:
        """The sidecar's bytes."""
        head = json.dumps(
            {"format": FORMAT, "version": VERSION, "shard": {"etag": self.etag, "size": self.size}},
            separators=(",", ":"),
        )
        bounds = self.bounds
        ranges = ",".join(f"[{bounds[i]},{bounds[i + 1]}]" for i in range(0, len(bounds), 2))
        return f'{head[:-1]},"samples":[{ranges}]}}'.encode()

    def __reduce__(self):
        return (ShardIndex, (self.etag, self.size, self.bounds))

    def __repr__(self) -> str:
        return f"ShardIndex(etag={self.etag!r}, size={self.size}, samples={self.sample_count})"


def index_key(shard_key: str) -> str:
    """The key of a shard's sidecar index."""
    return shard_key + INDEX_SUFFIX


def is_index_key(key: str) -> bool:
    """Whether ``key`` names a sidecar index (which tar shard readers skip), not a shard."""
    return key.endswith(INDEX_SUFFIX)


def same_etag(first: str, second: str) -> bool:
    """Whether two ETags name one version: equal once their quotes are dropped (a server may quote
    them in one answer and not in another); an empty or weak ETag names none."""
    if not first or not second or first.startswith("W/") or second.startswith("W/"):
        return False
    return first.strip('"') == second.strip('"')


def parse_index(data: bytes) -> ShardIndex:
    """The index in a sidecar's bytes, checked whole; DamagedIndex says what is wrong."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise DamagedIndex(f"it is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise DamagedIndex("it is not a JSON object")
    if document.get("format") != FORMAT:
        raise DamagedIndex(f"its format is {document.get('format')!r}, not {FORMAT!r}")
    if document.get("version") != VERSION or not _is_int(document.get("version")):
        raise DamagedIndex(f"its version is {document.get('version')!r}: this reader reads version {VERSION}")
    shard = document.get("shard")
    if not isinstance(shard, dict) or not isinstance(shard.get("etag"), str):
        raise DamagedIndex('it has no "shard": {"etag": "...", "size": ...} with the ETag as a string')
    etag, size = shard["etag"], shard.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise DamagedIndex(f"the shard's size is {size!r}, not a number of bytes")
    samples = document.get("samples")
    if not isinstance(samples, list):
        raise DamagedIndex('it has no "samples" list')
    return ShardIndex(etag, size, _checked_bounds(samples, size))


def _checked_bounds(samples: List, size: int) -> "array[int]":
    bounds = array("Q")
    previous_end = 0
    for n, pair in enumerate(samples):
        if not (isinstance(pair, list) and len(pair) == 2 and _is_int(pair[0]) and _is_int(pair[1])):
            raise DamagedIndex(f"sample {n} is {pair!r}, not [start, end]")
        start, end = pair
        if not previous_end <= start < end <= size:
            raise DamagedIndex(
                f"sample {n} is [{start}, {end}]: ranges must increase without overlapping, within the shard's "
                f"{size} bytes"
            )
        if start % BLOCK or end % BLOCK:
            raise DamagedIndex(f"sample {n} is [{start}, {end}]: tar members start and end at multiples of {BLOCK}")
        bounds.append(start)
        bounds.append(end)
        previous_end = end
    return bounds


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def index_by_reading(fileobj, url: str, etag: str, size: int) -> ShardIndex:
    """The index of the shard ``url`` (version ``etag``, ``size`` bytes) from one pass over its bytes
    in ``fileobj``. ValueError, naming the shard, for a tar that cannot be read at random: compressed,
    damaged (with the offset), or with a global pax header that changes how members after it read."""
    if not hasattr(fileobj, "peek"):
        fileobj = io.BufferedReader(fileobj)
    compressor = compression(fileobj)
    if compressor is not None:
        raise ValueError(
            f"{url} is a {compressor}-compressed tar: its samples cannot be read at random (finding one means "
            "decompressing everything before it). Read it with S3IterableDataset(shard_format='tar'), which "
            "streams it, or repack it as a plain tar (e.g. with ShardWriter or `s3torchconnector pack`)"
        )
    bounds = array("Q")

    def refuse_global_fields(records: Dict[str, str], offset: int) -> None:
        fields = sorted(field for field in records if field in READING_FIELDS)
        if fields:
            raise ValueError(
                f"{url} cannot be read at random: its global pax header at byte {offset} sets {', '.join(fields)} "
                "for the members after it, which a read of one sample's bytes would not see. Read it with "
                "S3IterableDataset(shard_format='tar'), or repack it (e.g. with ShardWriter)"
            )

    try:
        members = regular_files(fileobj, on_global_header=refuse_global_fields)
        for _, fields in sample_members(members, url):
            first: Optional[int] = None
            last = 0
            for member in fields.values():
                first = member.offset if first is None else first
                last = member.end
            assert first is not None  # a sample has a member
            bounds.append(first)
            bounds.append(last)
    except BrokenTar as error:
        raise not_readable(url, error, "it cannot be indexed") from None
    return ShardIndex(etag, size, bounds)
