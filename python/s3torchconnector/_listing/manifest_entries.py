"""The objects of a manifest, kept as the text of their lines until one is asked for.

A dataset over 100,000 objects needs their count and their order before its first sample, but only
the few objects it reads next: making 100,000 entries up front cost most of the time to the first
sample. A line in the shape ``write_manifest`` writes is checked whole by one regular expression
over a block of lines and kept as text; any other line is parsed the exact way and kept as its entry.
"""

import re
from collections.abc import Sequence
from typing import Iterator, List, Union

from .._s3bucket_key_data import S3BucketKeyData
from .._s3client import ObjectInfo


def _line_pattern(group: str) -> str:
    """``{"key":"k","size":1,"etag":"\\"e\\""}`` (a space allowed after each colon and comma): a key
    with nothing to unescape and no control character, a JSON integer size, an ETag of S3's form."""
    key, size, etag = r'[^"\\\x00-\x1f]+', r"0|[1-9][0-9]*", r"[0-9A-Za-z-]*"
    return rf'\{{"key": ?"{group}{key})", ?"size": ?{group}{size}), ?"etag": ?"\\"{group}{etag})\\""\}}'


_SIMPLE_LINE = re.compile(_line_pattern("("))
_SIMPLE_LINES = re.compile(f"(?:{_line_pattern('(?:')}\n)*")  # no groups: nothing captured, nothing made

Row = Union[str, S3BucketKeyData]  # a simple line's text, or the entry of any other line


def is_simple_block(block: str) -> bool:
    """Whether every line of ``block`` (each ending with a newline) is a simple line."""
    return _SIMPLE_LINES.fullmatch(block) is not None


def is_simple_line(line: str) -> bool:
    return _SIMPLE_LINE.fullmatch(line) is not None


class ManifestEntries(Sequence):
    """The entries of a checked manifest, in its order: ``S3BucketKeyData`` with each object's size
    and ETag, made when indexed. ``bucket`` is the header's, where the simple lines' keys are."""

    __slots__ = ("bucket", "_rows")

    def __init__(self, bucket: str, rows: List[Row]):
        self.bucket = bucket
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._entry(row) for row in self._rows[index]]
        return self._entry(self._rows[index])

    def __iter__(self) -> Iterator[S3BucketKeyData]:
        return map(self._entry, self._rows)

    def keys(self) -> List[str]:
        """Every object's key, in order, without making the entries."""
        return [_key_of_simple_line(row) if isinstance(row, str) else row.key for row in self._rows]

    def _entry(self, row: Row) -> S3BucketKeyData:
        if not isinstance(row, str):
            return row
        key, size, etag = _SIMPLE_LINE.fullmatch(row).groups()  # type: ignore[union-attr]  # checked when read
        return S3BucketKeyData(self.bucket, key, ObjectInfo(key, f'"{etag}"', int(size)))

    def __reduce__(self):
        return (ManifestEntries, (self.bucket, self._rows))


def _key_of_simple_line(line: str) -> str:
    start = line.index('"', 6) + 1  # the quote after '{"key":' (and its optional space)
    return line[start : line.index('"', start)]
