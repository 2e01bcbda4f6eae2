"""S3IterableDataset: streams the objects under a prefix (or a list of URIs), in listing order or
a seeded shuffle, and can resume where a pass stopped."""

import io
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

import torch.utils.data

from . import _native
from ._epochs.iterator import EpochIterator
from ._epochs.order import shuffled_samples
from ._epochs.saved_state import EpochCounter, EpochPasses
from ._epochs.state import STATES, Position, Settings, find_positions, merge, position_from_dict
from ._listing.manifest import ObjectsFromManifest
from ._listing.sources import ObjectsFromUris, ObjectsUnderPrefix
from ._s3client import S3Client, S3ClientConfig
from ._s3dataset_common import S3BucketKeyData, identity
from ._stream_file import StreamFile
from ._tar.index import is_index_key
from ._tar.samples import tar_samples
from ._worker_shard import process_group, worker_shard
from .s3dataset_base import S3DatasetBase
from .s3reader import S3Reader
from .s3reader.protocol import S3ReaderConstructorProtocol

DEFAULT_PREFETCH = 64
DEFAULT_PREFETCH_BYTES = 256 * 1024 * 1024
SHARD_FORMATS = (None, "tar")


class S3IterableDataset(EpochPasses, S3DatasetBase, torch.utils.data.IterableDataset):
    """Yields ``transform(reader)`` for each object: in listing order, or with ``shuffle=True`` in
    an order drawn from ``seed`` and the epoch (``set_epoch``), the same on every rank and worker.

    The next ``prefetch`` objects (at most ``prefetch_bytes`` of them by their listed sizes) are
    already being fetched while the current one is consumed, so many small objects do not wait
    on one request at a time. With ``enable_sharding=True`` the objects are split across
    DataLoader workers and ``torch.distributed`` ranks: each is read once per epoch in all.
    ``shuffle_buffer_size`` adds a seeded shuffle buffer within each worker's share. With
    ``shard_format="tar"`` each object is a tar shard streamed into WebDataset-layout samples
    (dicts), which ``transform`` receives instead of a reader.

    A pass can be saved and resumed: ``state_dict()`` / ``load_state_dict()`` on the dataset and
    its iterator (what torchdata's StatefulDataLoader calls), and ``elastic_state()`` to resume
    with another number of ranks or workers. Make one with ``from_prefix``, ``from_objects`` or
    ``from_manifest``.
    """

    def __init__(
        self,
        region: str,
        get_dataset_objects: Callable[[S3Client], Iterable[S3BucketKeyData]],
        endpoint: Optional[str] = None,
        transform: Callable[[S3Reader], Any] = identity,
        s3client_config: Optional[S3ClientConfig] = None,
        enable_sharding: bool = False,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
        *,
        shuffle: bool = False,
        seed: int = 0,
        shuffle_buffer_size: int = 0,
        shard_format: Optional[str] = None,
        prefetch: int = DEFAULT_PREFETCH,
        prefetch_bytes: int = DEFAULT_PREFETCH_BYTES,
    ):
        if not isinstance(enable_sharding, bool):
            raise TypeError(f"enable_sharding must be a bool, got {enable_sharding!r}")
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be a bool, got {shuffle!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        if isinstance(shuffle_buffer_size, bool) or not isinstance(shuffle_buffer_size, int) or shuffle_buffer_size < 0:
            raise ValueError(
                f"shuffle_buffer_size must be a non-negative int (0 for none), got {shuffle_buffer_size!r}"
            )
        if shard_format not in SHARD_FORMATS:
            raise ValueError(f"shard_format must be one of {SHARD_FORMATS}, got {shard_format!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be a non-negative int (0 turns it off), got {prefetch!r}")
        if isinstance(prefetch_bytes, bool) or not isinstance(prefetch_bytes, int) or prefetch_bytes < 0:
            raise ValueError(f"prefetch_bytes must be a non-negative int, got {prefetch_bytes!r}")
        super().__init__(
            region,
            get_dataset_objects=get_dataset_objects,
            endpoint=endpoint,
            transform=transform,
            s3client_config=s3client_config,
            reader_constructor=reader_constructor,
            kind="iterable",
        )
        self._enable_sharding = enable_sharding
        self._settings = Settings(
            shuffle=shuffle, seed=seed, shuffle_buffer_size=shuffle_buffer_size, shard_format=shard_format
        )
        self._epochs = EpochCounter(STATES)
        self._prefetch = prefetch
        self._prefetch_bytes = prefetch_bytes
        # Taken here, where the process group lives: DataLoader workers started by spawn or
        # forkserver have none, and get these values with the pickled dataset.
        self._rank, self._world_size = process_group() or (0, 1)

    def __getstate__(self):
        # A process group started after the dataset was built still counts: pickling for spawn and
        # forkserver workers happens in the process that has it.
        self._rank, self._world_size = process_group() or (self._rank, self._world_size)
        return self.__dict__

    def _new_pass(self, epoch: int, resume: Optional[Position]) -> EpochIterator:
        return EpochIterator(self, epoch, resume)

    def _counter_from_dict(self, state) -> EpochCounter:
        return STATES.counter_from_dict(state, position_from_dict)

    @staticmethod
    def elastic_state(states) -> dict:
        """Merges the saved states of every rank of a stopped job (each rank's StatefulDataLoader
        ``state_dict()``, or the iterators' states) into one that a job with any number of ranks
        and workers loads with ``load_state_dict`` before iterating: every object the stopped job
        had not read in that epoch is then read exactly once, in the epoch's order."""
        return merge(find_positions(states)).to_dict()

    def _source_description(self) -> str:
        source = self._get_dataset_objects
        if isinstance(source, ObjectsUnderPrefix):
            return f"the listing of s3://{source.bucket}/{source.prefix}"
        if isinstance(source, ObjectsFromUris):
            return "the list of objects"
        if isinstance(source, ObjectsFromManifest):
            return f"the manifest {source.uri}"
        return "the dataset's objects"

    def _units(self, positions: Iterator[int], listing, epoch: int) -> Iterator[Tuple[int, Iterator[Any]]]:
        """(listing position, its samples) for each object at ``positions``: an object is one
        sample, a tar shard many. The next ones' requests are in flight while one is consumed."""
        items = ((position, listing[position]) for position in positions)
        if self._settings.shard_format == "tar":
            # A shard's sidecar index is no shard: a unit without samples, and no GET. Its position
            # stays, so that saved states and the listing's fingerprint do not change.
            shards = (
                (p, _NO_SHARD, 0) if is_index_key(item.key) else (p, _TarShard(self, item), _listed_size(item))
                for p, item in items
            )
            for position, shard in self._read_ahead(shards):
                samples = shuffled_samples(
                    shard.samples(),
                    self._settings.shuffle_buffer_size,
                    seed=self._settings.seed,
                    epoch=epoch,
                    position=position,
                )
                yield position, samples
        else:
            readers = ((p, self._reader(item), _listed_size(item)) for p, item in items)
            for position, reader in self._read_ahead(readers):
                yield position, self._one_sample(reader)

    def _one_sample(self, reader: S3Reader) -> Iterator[Any]:
        yield self._sample(reader)

    def _get_transformed_object(self, bucket_key: S3BucketKeyData) -> Any:
        return self._sample(self._reader(bucket_key))

    def _current_shard(self) -> Tuple[int, int]:
        """(this worker's shard, number of shards) over DataLoader workers and distributed ranks;
        (0, 1) without sharding, where every worker reads every object."""
        if not self._enable_sharding:
            return 0, 1
        return worker_shard(self._rank, self._world_size)

    def _read_ahead(self, entries: Iterator[Tuple[int, Any, int]]) -> Iterator[Tuple[int, Any]]:
        """Yields (position, reader) in order while keeping the next readers' requests in flight:
        at most ``prefetch`` of them, and ``prefetch_bytes`` by their listed sizes (0 when unknown)."""
        pending: deque = deque()
        pending_bytes = 0
        for position, reader, size in entries:
            while pending and (len(pending) >= self._prefetch or pending_bytes + size > self._prefetch_bytes):
                ready_position, ready, ready_size = pending.popleft()
                pending_bytes -= ready_size
                yield ready_position, ready
            if self._prefetch == 0:
                yield position, reader
                continue
            reader.prefetch()
            pending.append((position, reader, size))
            pending_bytes += size
        while pending:
            ready_position, ready, _ = pending.popleft()
            yield ready_position, ready


class _TarShard:
    """One tar shard: its GET starts at ``prefetch()`` (or the first read) and streams in order, so
    memory stays bounded whatever the shard's size."""

    def __init__(self, dataset: S3IterableDataset, item: S3BucketKeyData):
        self._dataset = dataset
        self._item = item
        self._stream: Optional["_native.GetObjectStream"] = None

    def prefetch(self) -> None:
        if self._stream is None:
            item = self._item
            etag = self._dataset._pinned_etag(item)
            client = self._dataset._get_client()
            self._stream = client._stream_object(item.bucket, item.key, etag, item.object_info)

    def samples(self) -> Iterator[Any]:
        item = self._item
        with self._dataset._reading(item.bucket, item.key):
            self.prefetch()
            shard = io.BufferedReader(StreamFile(self._stream), buffer_size=1 << 20)
            transform: Callable[[Any], Any] = self._dataset._transform  # given sample dicts, not readers
            for sample in tar_samples(shard, f"s3://{item.bucket}/{item.key}"):
                yield transform(sample)


class _NoShard:
    """What stands in the read-ahead for an object that is not a shard (a sidecar index)."""

    def prefetch(self) -> None:
        pass

    def samples(self) -> Iterator[Any]:
        return iter(())


_NO_SHARD = _NoShard()


def _listed_size(item: S3BucketKeyData) -> int:
    return item.object_info.size if item.object_info and item.object_info.size else 0
