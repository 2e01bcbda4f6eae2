"""ShardWriter: samples in WebDataset's layout written to numbered tar shards in S3, each one
uploaded while it fills."""

import numbers
import re
import time
from array import array
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

from ._publish_on_success import PublishOnSuccess
from ._s3client import S3Client, S3ClientConfig
from ._s3uri import parse_s3_uri
from ._tar.index import ShardIndex, index_key
from ._tar.samples import _METADATA, key_and_extension
from ._tar.stream import END_OF_ARCHIVE, TarStream, member_header, member_size
from ._user_agent import UserAgent
from ._validation import check_key

DEFAULT_MAX_SIZE = 256 * 1024 * 1024
DEFAULT_MAX_COUNT = 100_000

# A printf conversion: "%%", or an integer one ("%06d", "%x"...) in group 1.
_CONVERSION = re.compile(r"%(?:%|[#0 +-]*\d*([diouxX]))")
_COMPRESSED = (".gz", ".tgz", ".bz2", ".xz", ".zst")


class ShardInfo(NamedTuple):
    """A completed shard: its URI, how many samples it holds, and its size in bytes."""

    uri: str
    samples: int
    size: int


class ShardWriter(PublishOnSuccess):
    """Writes samples to the tar shards ``pattern % n`` (``s3://bucket/shards/train-%06d.tar``),
    n counting from ``start_shard``: the layout that ``S3IterableDataset(shard_format="tar")`` and
    WebDataset read.

    A sample is a dict as WebDataset has it: ``"__key__"`` names the sample (``"train/0001"``) and
    each other entry is one file of it, named by its extension:
    ``{"__key__": "train/0001", "jpg": b"...", "cls": 3}`` becomes the members ``train/0001.jpg``
    and ``train/0001.cls``, in the dict's order. Values are bytes-like (bytes, bytearray,
    memoryview), str (written as UTF-8) or numbers (written as their text: ``3`` -> ``b"3"``);
    encode anything else yourself (``json.dumps``, ``numpy.save``, an image encoder). As in
    WebDataset's writer, entries whose names start with "_" (``__url__``, ``__local_path__``) are
    metadata and are not written, so a sample read from shards can be written again as it is.
    Readers lower-case extensions: ``JPG`` reads back as ``jpg``.

    A sample that would not read back as written (no or empty ``__key__``, a dot in the key's last
    path component, an extension given twice, a value of another type, the same key as the sample
    before...) raises ValueError or TypeError before any of its bytes are written; the writer
    stays usable.

    Each shard is streamed into S3 as it fills (an S3Writer: parts go up while you write, so a
    shard is never held whole in memory). The next shard starts when the next sample would take
    this one over ``max_size`` bytes (the whole tar object) or ``max_count`` samples; a sample
    larger than ``max_size`` gets a shard of its own. No shard is created before its first sample.

    Use it in a ``with`` block: leaving it normally completes the last shard; leaving it by an
    exception aborts the shard in progress, which then does not exist (no partial object, no
    multipart upload left behind), while the shards completed before it stay. A failed upload
    does the same and closes the writer. Without ``with``, call ``close()`` (or ``abort()``); a
    writer dropped unclosed cancels its shard in progress. ``shards`` lists the completed shards
    (URI, samples, bytes), ``shard_uris`` their URIs, and ``sample_count`` counts the samples
    written.

    Beside each shard it completes, the writer puts the shard's index, a small JSON object whose key
    is the shard's followed by ``.index.json`` (the byte range of each sample, and the shard's ETag,
    which one HEAD after the upload tells): ``S3MapDataset(shard_format="tar")`` reads any sample
    with one ranged GET through it. ``write_index=False`` writes none (such a dataset then indexes
    a shard by reading it once). A failure to write an index raises, as a failed upload does; its
    shard stays complete (and is listed in ``shards``).
    """

    def __init__(
        self,
        pattern: str,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        max_count: int = DEFAULT_MAX_COUNT,
        region: str,
        endpoint: Optional[str] = None,
        s3client_config: Optional[S3ClientConfig] = None,
        start_shard: int = 0,
        write_index: bool = True,
    ):
        if not isinstance(write_index, bool):
            raise TypeError(f"write_index must be a bool, got {write_index!r}")
        self._bucket, self._key_pattern = _parse_pattern(pattern)
        if write_index:
            check_key(index_key(self._key_pattern % 0))
        self._write_index = write_index
        self._max_size = _count_argument("max_size", max_size, 1)
        self._max_count = _count_argument("max_count", max_count, 1)
        self._next_shard = _count_argument("start_shard", start_shard, 0)
        self._client = S3Client(
            region, endpoint=endpoint, user_agent=UserAgent(["md/shard_writer"]), s3client_config=s3client_config
        )
        self.pattern = pattern
        self.shards: List[ShardInfo] = []
        self.sample_count = 0
        self._mtime = int(time.time())  # one time for all members: the shards of a run look alike
        self._shard: Optional[_OpenShard] = None
        self._previous_key: Optional[str] = None
        self._closed = False

    @property
    def shard_uris(self) -> List[str]:
        """The URIs of the completed shards, in the order written."""
        return [shard.uri for shard in self.shards]

    def write(self, sample: Mapping) -> str:
        """Writes one sample; returns the URI of the shard it went into."""
        if self._closed:
            raise ValueError(f"write to a closed ShardWriter ({self.pattern})")
        key, members, size = self._members(sample)
        shard = self._shard
        try:
            if shard is not None and (
                shard.samples >= self._max_count or shard.tar.size + size + END_OF_ARCHIVE > self._max_size
            ):
                self._finish_shard()
                shard = None
            if shard is None:
                shard = self._open_shard()
            shard.bounds.append(shard.tar.size)
            for header, data in members:
                shard.tar.write_member(header, data)
            shard.bounds.append(shard.tar.size)
        except BaseException:
            self.abort()  # a shard cut short must not be completed
            raise
        shard.samples += 1
        self.sample_count += 1
        self._previous_key = key
        return shard.uri

    def close(self) -> List[str]:
        """Completes the shard in progress; returns the URIs of all the shards written."""
        if not self._closed:
            try:
                if self._shard is not None:
                    self._finish_shard()
            except BaseException:
                self.abort()
                raise
            self._closed = True
        return self.shard_uris

    def abort(self) -> None:
        """Cancels the shard in progress (it will not exist); completed shards stay."""
        self._closed = True
        shard, self._shard = self._shard, None
        if shard is not None:
            shard.writer.abort()

    def _open_shard(self) -> "_OpenShard":
        key = self._key_pattern % self._next_shard
        self._next_shard += 1
        self._shard = _OpenShard(key, f"s3://{self._bucket}/{key}", self._client.put_object(self._bucket, key))
        return self._shard

    def _finish_shard(self) -> None:
        shard = self._shard
        assert shard is not None  # called only with a shard open
        shard.tar.close()
        shard.writer.close()
        self._shard = None
        self.shards.append(ShardInfo(shard.uri, shard.samples, shard.tar.size))
        if self._write_index:
            self._put_index(shard)

    def _put_index(self, shard: "_OpenShard") -> None:
        """The completed shard's sidecar index, naming the ETag S3 gave it (the upload does not say)."""
        head = self._client.head_object(self._bucket, shard.key)
        if head.size != shard.tar.size:
            raise ValueError(
                f"{shard.uri} is {head.size} bytes in S3, not the {shard.tar.size} written: something else wrote "
                "it meanwhile, so its index was not written; write the shards again"
            )
        index = self._client.put_object(self._bucket, index_key(shard.key))
        try:
            index.write(ShardIndex(head.etag, shard.tar.size, shard.bounds).to_json())
            index.close()
        except BaseException:
            index.abort()
            raise

    def _members(self, sample: Mapping) -> Tuple[str, List[Tuple[bytes, memoryview]], int]:
        """(key, [(header, data)], bytes they take) for a sample, or the reason it cannot be written."""
        if not isinstance(sample, Mapping):
            raise TypeError(
                f"a sample is a dict like {{'__key__': 'train/0001', 'jpg': b'...'}}, got {type(sample).__name__}"
            )
        if "__key__" not in sample:
            raise ValueError(
                f"the sample has no '__key__' (its fields: {sorted(map(str, sample))}): name it, e.g. 'train/0001'"
            )
        key = sample["__key__"]
        check_sample_key(key)
        if key == self._previous_key:
            raise ValueError(
                f"the sample {key!r} has the key of the sample written just before it: readers would merge "
                "the two (consecutive members with one key are one sample); give each sample its own key"
            )
        members: List[Tuple[bytes, memoryview]] = []
        extensions: Dict[str, str] = {}
        size = 0
        for extension, value in sample.items():
            if not isinstance(extension, str):
                raise TypeError(f"the sample {key!r} has a field named {extension!r}: field names are extensions (str)")
            if extension.startswith("_"):
                continue  # metadata such as __key__ and __url__, not a file (as in WebDataset's writer)
            check_member_name(key, extension)
            if extension.lower() in extensions:
                raise ValueError(
                    f"the sample {key!r} has both {extensions[extension.lower()]!r} and {extension!r}: readers "
                    "lower-case extensions, so they would be one field given twice"
                )
            extensions[extension.lower()] = extension
            data = _as_bytes(key, extension, value)
            header = member_header(f"{key}.{extension}", len(data), self._mtime)
            members.append((header, data))
            size += member_size(header, len(data))
        if not members:
            raise ValueError(f"the sample {key!r} has no fields to write: add one such as 'jpg': b'...'")
        return key, members, size


class _OpenShard:
    def __init__(self, key: str, uri: str, writer):
        self.key = key
        self.uri = uri
        self.writer = writer
        self.tar = TarStream(writer)
        self.samples = 0
        self.bounds = array("Q")  # where each sample's members start and end in the tar


def check_sample_key(key) -> None:
    """Raises unless ``key`` reads back as the same key from a tar shard."""
    if not isinstance(key, str):
        raise TypeError(f"__key__ must be a string such as 'train/0001', got {type(key).__name__}")
    if not key:
        raise ValueError("__key__ is empty: name the sample, e.g. 'train/0001'")
    if "\0" in key:
        raise ValueError(f"__key__ {key!r} contains a NUL character")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"__key__ {key!r} is not valid text ({error})") from None
    if key.startswith("/"):
        raise ValueError(f"__key__ {key!r} starts with '/': member names in shards are relative paths")
    components = key.split("/")
    if any(component in ("", ".", "..") for component in components):
        raise ValueError(f"__key__ {key!r} has an empty, '.' or '..' path component")
    if "." in components[-1]:
        raise ValueError(
            f"__key__ {key!r} has a dot in its last path component: readers split a file name at its first dot, "
            f"so {key + '.jpg'!r} would read back as the key {key_and_extension(key + '.jpg')[0]!r}; "
            "use another character (dots are fine in directories)"
        )


def check_member_name(key: str, extension: str) -> None:
    """Raises unless the member ``<key>.<extension>`` reads back as (key, extension lower-cased)."""
    if not extension:
        raise ValueError(f"the sample {key!r} has a field with an empty name: fields are named by their extension")
    if "/" in extension or "\0" in extension:
        raise ValueError(f"the sample {key!r} has a field {extension!r}: an extension cannot contain '/' or NUL")
    name = f"{key}.{extension}"
    if _METADATA.match(name):
        raise ValueError(f"{name!r} is named like WebDataset's metadata (__name__): readers would skip it")
    if key_and_extension(name) != (key, extension.lower()):  # whatever the checks above missed
        raise ValueError(f"{name!r} would not read back as the key {key!r} with the extension {extension!r}")


def _as_bytes(key: str, extension: str, value) -> memoryview:
    """The bytes of a field, as a flat view (no copy for bytes-like values)."""
    if isinstance(value, (bytes, bytearray)):
        return memoryview(value)
    if isinstance(value, memoryview):
        if not value.c_contiguous:
            raise ValueError(f"the field {extension!r} of the sample {key!r} is a memoryview that is not contiguous")
        return value.cast("B") if value.format != "B" or value.ndim != 1 else value
    if isinstance(value, str):
        try:
            return memoryview(value.encode("utf-8"))
        except UnicodeEncodeError as error:
            raise ValueError(f"the field {extension!r} of the sample {key!r} is not valid text ({error})") from None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return memoryview(str(value).encode("ascii"))
    hint = "int(flag) or str(flag)" if isinstance(value, bool) else "encode it to bytes first"
    raise TypeError(
        f"the field {extension!r} of the sample {key!r} is a {type(value).__name__}: fields are bytes-like, str or "
        f"numbers ({hint})"
    )


def _parse_pattern(pattern) -> Tuple[str, str]:
    """(bucket, key pattern) of a shard pattern with exactly one integer conversion."""
    bucket, key_pattern = parse_s3_uri(pattern)
    numbered = [match for match in _CONVERSION.finditer(key_pattern) if match.group(1)]
    if "%" in _CONVERSION.sub("", key_pattern) or len(numbered) != 1:
        raise ValueError(
            f"the shard pattern {pattern!r} must hold exactly one integer format for the shard number, such as "
            f"'s3://{bucket}/shards/train-%06d.tar' (write a literal % as %%)"
        )
    if key_pattern.lower().endswith(_COMPRESSED):
        raise ValueError(f"the shard pattern {pattern!r} names compressed files; ShardWriter writes plain tar (.tar)")
    check_key(key_pattern % 0)
    return bucket, key_pattern


def _count_argument(name: str, value, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, got {value}")
    return value
