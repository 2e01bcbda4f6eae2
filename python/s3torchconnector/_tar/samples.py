"""Samples of a tar shard in WebDataset's layout, parsed as the shard streams in.

Consecutive members with the same base name form one sample: ``train/0001.jpg`` and
``train/0001.cls`` become ``{"__key__": "train/0001", "__url__": url, "jpg": b"...", "cls": b"..."}``.
As in WebDataset, the extension is everything after the first dot of the file name, lower-cased;
members that are not regular files, have no extension, or are named like ``__meta__`` are skipped,
and a sample holding two members of one extension is an error. Only one sample is in memory at a
time, so shards of any size stream through. A damaged shard raises ValueError naming the shard and
the byte offset where it stopped making sense, and the sample being read then is not yielded.
"""

import re
from typing import Dict, Iterator, Optional, Tuple

from .reader import BrokenTar, regular_files

_KEY_AND_EXTENSION = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
_METADATA = re.compile(r"__[^/]*__($|/)")


def key_and_extension(name: str) -> Tuple[Optional[str], Optional[str]]:
    """(key, lower-cased extension) of a member name; (None, None) for a name without an extension."""
    match = _KEY_AND_EXTENSION.match(name)
    return (match.group(1), match.group(2).lower()) if match else (None, None)


def tar_samples(fileobj, url: str) -> Iterator[Dict[str, object]]:
    """The samples of the tar stream ``fileobj`` (plain or compressed)."""
    sample: Optional[Dict[str, object]] = None
    try:
        for name, offset, read in regular_files(fileobj):
            key, extension = key_and_extension(name)
            if key is None or extension is None or _METADATA.match(name):
                continue
            if sample is not None and key != sample["__key__"]:
                yield sample
                sample = None
            if sample is None:
                sample = {"__key__": key, "__url__": url}
            if extension in sample:
                raise ValueError(
                    f"{url}: {name} is a second '{extension}' member of the sample {key!r} (at byte {offset})"
                )
            sample[extension] = read()
    except BrokenTar as error:
        raise ValueError(
            f"{url} is not a readable tar shard: {error} (at byte {error.offset}); the sample being read was not yielded"
        ) from None
    if sample is not None:
        yield sample
