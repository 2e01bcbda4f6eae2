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
from typing import Dict, Iterable, Iterator, Optional, Tuple

from .reader import BrokenTar, TarMember, regular_files

_KEY_AND_EXTENSION = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
_METADATA = re.compile(r"__[^/]*__($|/)")
_SAMPLE_FIELDS = ("__key__", "__url__")  # every sample has them: a member named so would overwrite one


def key_and_extension(name: str) -> Tuple[Optional[str], Optional[str]]:
    """(key, lower-cased extension) of a member name; (None, None) for a name without an extension."""
    match = _KEY_AND_EXTENSION.match(name)
    return (match.group(1), match.group(2).lower()) if match else (None, None)


def tar_samples(fileobj, url: str, *, start: int = 0) -> Iterator[Dict[str, object]]:
    """The samples of the tar stream ``fileobj`` (plain or compressed). ``start``: where
    ``fileobj`` begins in the shard (a byte range of it), for the offsets that errors name."""
    try:
        for key, members in sample_members(regular_files(fileobj, start=start), url):
            sample: Dict[str, object] = {"__key__": key, "__url__": url}
            for extension, member in members.items():
                sample[extension] = member.read()
            yield sample
    except BrokenTar as error:
        raise not_readable(url, error) from None


def sample_members(members: Iterable[TarMember], url: str) -> Iterator[Tuple[str, Dict[str, TarMember]]]:
    """(key, {extension: member}) for each sample of ``members``, in order, by WebDataset's rule (see
    the module's docstring). A sample is given once the member after it (or the end) shows it is whole."""
    key: Optional[str] = None
    fields: Dict[str, TarMember] = {}
    for member in members:
        name = member.name
        member_key, extension = key_and_extension(name)
        if member_key is None or extension is None or _METADATA.match(name):
            continue
        if member_key != key:
            if key is not None:
                yield key, fields
            key, fields = member_key, {}
        if extension in fields or extension in _SAMPLE_FIELDS:
            raise ValueError(
                f"{url}: {name} is a second '{extension}' member of the sample {key!r} (at byte {member.offset})"
            )
        fields[extension] = member
    if key is not None:
        yield key, fields


def not_readable(url: str, error: BrokenTar, what_follows: str = "the sample being read was not yielded") -> ValueError:
    """The error of a shard that broke, naming it and the offset where it broke."""
    return ValueError(f"{url} is not a readable tar shard: {error} (at byte {error.offset}); {what_follows}")
