"""Random access into tar shards: the samples of ``S3MapDataset(shard_format="tar")`` by position.

At the dataset's first ``len()`` or index, every shard's index (``index``: each sample's byte
range) is found, in this order:

1. kept on this node, by a process that indexed the shard by reading it (``kept_indexes``);
2. its sidecar (``<shard key>.index.json``): fetched with many GETs in flight, when the listing
   holds it, or, for objects not listed from a prefix (a manifest, a list of URIs), when a GET
   finds it. A sidecar that is damaged, or that describes another version of the shard (another
   ETag or size), is not used, and the log says so;
3. else the shard is read once, in one streamed pass, and its index kept on the node.

Sample ``i`` is then one ranged GET of its bytes, pinned to the ETag its index describes: a shard
written again since fails its read (ObjectChangedError) instead of giving other bytes. The bytes
are parsed by the same code as the streamed shards' (``samples``), so a sample is the dict that
``S3IterableDataset(shard_format="tar")`` yields for it. The indexes travel with the dataset into
DataLoader workers; per shard they hold two 8-byte offsets a sample.
"""

import io
import logging
from array import array
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

from .._s3bucket_key_data import S3BucketKeyData
from .._s3client import S3Client
from .._stream_file import StreamFile
from ..s3exception import NoSuchKeyError, ObjectChangedError, with_message
from .index import DamagedIndex, ShardIndex, index_by_reading, index_key, is_index_key, parse_index
from .kept_indexes import KeptIndexes
from .samples import tar_samples
from .stream import END_OF_ARCHIVE

log = logging.getLogger(__name__)

SIDECARS_IN_FLIGHT = 64  # GETs of sidecars at once
HEADS_IN_FLIGHT = 16  # HEADs at once, for shards whose ETag the dataset's objects do not carry
_NAMED_IN_LOG = 3  # shards a warning names; it counts the others
_END = bytes(END_OF_ARCHIVE)


class IndexedShard(NamedTuple):
    bucket: str
    key: str
    shard_index: ShardIndex
    from_sidecar: bool  # else made by reading the shard: what to blame if it does not match


class ShardSamples:
    """The samples of a dataset's tar shards, in the shards' order, by position."""

    def __init__(self, shards: List[IndexedShard]):
        self._shards = shards
        self._ends = array("Q")  # the number of samples up to the end of each shard
        total = 0
        for shard in shards:
            total += shard.shard_index.sample_count
            self._ends.append(total)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def start_read(self, client: S3Client, i: int) -> "PendingSample":
        """Sends the GET of sample ``i`` (negative counts from the end, as in a list)."""
        count = len(self)
        position = i + count if i < 0 else i
        if not 0 <= position < count:
            raise IndexError(f"dataset index {i} out of range (the dataset has {count} samples)")
        n = bisect_right(self._ends, position)
        shard = self._shards[n]
        start, end = shard.shard_index.sample_range(position - (self._ends[n - 1] if n else 0))
        stream = client._stream_range(shard.bucket, shard.key, shard.shard_index.etag, start, end)
        return PendingSample(shard, start, end, stream)


class PendingSample:
    """One sample's GET, in flight; ``sample()`` waits for its bytes and parses them."""

    def __init__(self, shard: IndexedShard, start: int, end: int, stream):
        self._shard = shard
        self._start = start
        self._end = end
        self._stream = stream

    @property
    def bucket(self) -> str:
        return self._shard.bucket

    @property
    def key(self) -> str:
        return self._shard.key

    def sample(self) -> Dict[str, object]:
        shard, start, end = self._shard, self._start, self._end
        url = f"s3://{shard.bucket}/{shard.key}"
        try:
            data = self._stream.read_all_bytes()
        except ObjectChangedError as error:
            raise with_message(
                error,
                f"{url} changed since the dataset indexed it (the index is of ETag {shard.shard_index.etag}), so its "
                f"samples may be elsewhere now: make the dataset again to index the shard anew ({error})",
            ) from error
        if len(data) != end - start:
            raise ValueError(f"{url} ended at byte {start + len(data)}, inside the sample at [{start}, {end})")
        # The sample's members, then the zero blocks that end a tar: a tar of this one sample.
        try:
            samples = list(tar_samples(io.BytesIO(data + _END), url, start=start))
        except ValueError as error:
            raise self._not_one_sample(url, str(error)) from None
        if len(samples) != 1:
            raise self._not_one_sample(url, f"they hold {len(samples)} samples")
        return samples[0]

    def _not_one_sample(self, url: str, problem: str) -> ValueError:
        if self._shard.from_sidecar:
            origin = f"its sidecar index {url}.index.json"
            advice = "write the sidecar again, or delete it (the shard is then indexed by reading it)"
        else:
            origin, advice = "the index made by reading it", "make the dataset again"
        return ValueError(
            f"{url}: the bytes [{self._start}, {self._end}) that {origin} gives for a sample are not one sample "
            f"({problem}): {advice}"
        )


def index_shards(objects: Iterable[S3BucketKeyData], client: S3Client, *, listed: bool) -> ShardSamples:
    """The index of every shard among ``objects`` (sidecars among them are not shards). ``listed``:
    the objects are a prefix's whole listing, so a shard's sidecar is among them or does not exist."""
    shards: List[S3BucketKeyData] = []
    sidecars: Dict[Tuple[str, str], S3BucketKeyData] = {}
    for item in objects:
        if is_index_key(item.key):
            sidecars[(item.bucket, item.key)] = item
        else:
            shards.append(item)
    versions = _versions(client, shards)
    kept = KeptIndexes(client)
    found = [_kept_index(kept, item, *version) for item, version in zip(shards, versions)]
    _use_sidecars(client, shards, versions, sidecars, listed, found)
    unindexed = [n for n, shard in enumerate(found) if shard is None]
    if unindexed:
        log.info("indexing %d of %d tar shards by reading them (no usable sidecar index)", len(unindexed), len(shards))
    _read_in_turn(client, kept, shards, versions, unindexed, found)
    indexed = [shard for shard in found if shard is not None]
    assert len(indexed) == len(shards)  # every shard indexed above, or an error raised
    return ShardSamples(indexed)


def _kept_index(kept: KeptIndexes, item: S3BucketKeyData, etag: str, size: int) -> Optional[IndexedShard]:
    index = kept.find(kept.name(item.bucket, item.key, etag)) if etag else None
    if index is None or not index.describes(etag, size):
        return None
    return IndexedShard(item.bucket, item.key, index, False)


def _use_sidecars(
    client: S3Client,
    shards: List[S3BucketKeyData],
    versions: List[Tuple[str, int]],
    sidecars: Dict[Tuple[str, str], S3BucketKeyData],
    listed: bool,
    found: List[Optional[IndexedShard]],
) -> None:
    """Fills ``found`` from the sidecars of the shards not indexed yet that have one (or may have
    one: not ``listed``), where the sidecar describes the shard's version."""
    wanted = []
    for n, item in enumerate(shards):
        sidecar = sidecars.get((item.bucket, index_key(item.key)))
        # A shard without an ETag cannot be matched with a sidecar: it is indexed by reading it.
        if found[n] is None and versions[n][0] and (sidecar is not None or not listed):
            wanted.append((n, sidecar or S3BucketKeyData(item.bucket, index_key(item.key))))
    unused = _UnusedSidecars()
    for n, data in _fetched(client, wanted):
        if data is None:
            continue
        item, (etag, size) = shards[n], versions[n]
        uri = f"s3://{item.bucket}/{index_key(item.key)}"
        try:
            index = parse_index(data)
        except DamagedIndex as error:
            unused.damaged.append(f"{uri} ({error})")
            continue
        if not index.describes(etag, size):
            unused.stale.append(f"{uri} (of ETag {index.etag}, {index.size} bytes; the shard: {etag}, {size} bytes)")
            continue
        found[n] = IndexedShard(item.bucket, item.key, index, True)
    unused.log()


def _versions(client: S3Client, shards: List[S3BucketKeyData]) -> List[Tuple[str, int]]:
    """(ETag, size) of each shard: its listing's or manifest's, else one HEAD (many in flight)."""
    versions: List[Optional[Tuple[str, int]]] = [
        (item.object_info.etag, item.object_info.size) if item.object_info is not None else None for item in shards
    ]
    missing = [n for n, version in enumerate(versions) if version is None]
    if missing:
        with ThreadPoolExecutor(max_workers=min(HEADS_IN_FLIGHT, len(missing))) as pool:
            heads = pool.map(lambda n: client.head_object(shards[n].bucket, shards[n].key), missing)
            for n, head in zip(missing, heads):
                versions[n] = (head.etag, head.size)
    return [version for version in versions if version is not None]


def _fetched(client: S3Client, wanted: List[Tuple[int, S3BucketKeyData]]):
    """(n, the bytes of its sidecar, or None when there is none) for each of ``wanted``: the GETs
    of a batch are all sent before the first is read."""
    for first in range(0, len(wanted), SIDECARS_IN_FLIGHT):
        batch = wanted[first : first + SIDECARS_IN_FLIGHT]
        streams = [
            (n, client._stream_object(sidecar.bucket, sidecar.key, "", sidecar.object_info)) for n, sidecar in batch
        ]
        for n, stream in streams:
            try:
                yield n, stream.read_all_bytes()
            except NoSuchKeyError:
                yield n, None


class _UnusedSidecars:
    """Sidecars found but not used, told in one warning per kind."""

    def __init__(self) -> None:
        self.damaged: List[str] = []
        self.stale: List[str] = []

    def log(self) -> None:
        if self.damaged:
            log.warning(
                "%d sidecar indexes of tar shards are damaged and were ignored (their shards are indexed by reading "
                "them): %s",
                len(self.damaged),
                _some(self.damaged),
            )
        if self.stale:
            log.warning(
                "%d sidecar indexes describe another version of their tar shard (the shard was written again since) "
                "and were not used (their shards are indexed by reading them): %s",
                len(self.stale),
                _some(self.stale),
            )


def _some(described: List[str]) -> str:
    more = len(described) - _NAMED_IN_LOG
    return "; ".join(described[:_NAMED_IN_LOG]) + (f"; and {more} more" if more > 0 else "")


def _read_in_turn(
    client: S3Client,
    kept: KeptIndexes,
    shards: List[S3BucketKeyData],
    versions: List[Tuple[str, int]],
    unindexed: List[int],
    found: List[Optional[IndexedShard]],
) -> None:
    """Indexes the shards ``unindexed`` into ``found`` by reading them, each under its lock on the
    node: a shard another process is reading now is left for last, when its index is likely kept."""
    left: List[int] = []
    for n in unindexed:
        if not versions[n][0]:  # no ETag to name the version by: nothing to keep it under
            found[n] = _read(client, shards[n], *versions[n])
            continue
        name = kept.name(shards[n].bucket, shards[n].key, versions[n][0])
        with kept.building(name, wait=False) as holding:
            if holding:
                found[n] = _kept_or_read(kept, name, client, shards[n], *versions[n])
            else:
                left.append(n)
    for n in left:
        name = kept.name(shards[n].bucket, shards[n].key, versions[n][0])
        with kept.building(name, wait=True):
            found[n] = _kept_or_read(kept, name, client, shards[n], *versions[n])


def _kept_or_read(
    kept: KeptIndexes, name: str, client: S3Client, item: S3BucketKeyData, etag: str, size: int
) -> IndexedShard:
    index = kept.find(name)  # kept by the process that held the lock before
    if index is not None and index.describes(etag, size):
        return IndexedShard(item.bucket, item.key, index, False)
    shard = _read(client, item, etag, size)
    kept.keep(name, shard.shard_index)
    return shard


def _read(client: S3Client, item: S3BucketKeyData, etag: str, size: int) -> IndexedShard:
    """The shard's index from one streamed pass over it, at version ``etag``."""
    url = f"s3://{item.bucket}/{item.key}"
    stream = client._stream_object(item.bucket, item.key, etag)
    shard = io.BufferedReader(StreamFile(stream), buffer_size=1 << 20)
    try:
        return IndexedShard(item.bucket, item.key, index_by_reading(shard, url, etag, size), False)
    finally:
        shard.close()
