"""S3IterableDataset: streams the objects under a prefix (or a list of URIs), in listing order or
a seeded shuffle, and can resume where a pass stopped."""

from collections import deque
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

import torch.distributed
import torch.utils.data

from ._epoch_iterator import EpochIterator
from ._iterable_state import EpochCounter, Settings, dataset_state_from_dict, find_positions, merge
from ._s3client import S3Client, S3ClientConfig
from ._s3dataset_common import ObjectsFromUris, ObjectsUnderPrefix, S3BucketKeyData, identity
from .s3dataset_base import S3DatasetBase
from .s3reader import S3Reader
from .s3reader.protocol import S3ReaderConstructorProtocol

DEFAULT_PREFETCH = 64
DEFAULT_PREFETCH_BYTES = 256 * 1024 * 1024


class S3IterableDataset(S3DatasetBase, torch.utils.data.IterableDataset):
    """Yields ``transform(reader)`` for each object: in listing order, or with ``shuffle=True`` in
    an order drawn from ``seed`` and the epoch (``set_epoch``), the same on every rank and worker.

    The next ``prefetch`` objects (at most ``prefetch_bytes`` of them by their listed sizes) are
    already being fetched while the current one is consumed, so many small objects do not wait
    on one request at a time. With ``enable_sharding=True`` the objects are split across
    DataLoader workers and ``torch.distributed`` ranks: each is read once per epoch in all.
    ``shuffle_buffer_size`` adds a seeded shuffle buffer within each worker's share.

    A pass can be saved and resumed: ``state_dict()`` / ``load_state_dict()`` on the dataset and
    its iterator (what torchdata's StatefulDataLoader calls), and ``elastic_state()`` to resume
    with another number of ranks or workers. Make one with ``from_prefix`` or ``from_objects``.
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
            raise ValueError(f"shuffle_buffer_size must be a non-negative int (0 for none), got {shuffle_buffer_size!r}")
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
        self._settings = Settings(shuffle=shuffle, seed=seed, shuffle_buffer_size=shuffle_buffer_size)
        self._epochs = EpochCounter()
        self._prefetch = prefetch
        self._prefetch_bytes = prefetch_bytes
        # Taken here, where the process group lives: DataLoader workers started by spawn or
        # forkserver have none, and get these values with the pickled dataset.
        self._rank, self._world_size = _process_group() or (0, 1)

    def __getstate__(self):
        # A process group started after the dataset was built still counts: pickling for spawn and
        # forkserver workers happens in the process that has it.
        self._rank, self._world_size = _process_group() or (self._rank, self._world_size)
        return self.__dict__

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next pass reads, which (with ``shuffle``) draws its order. Call it at the
        start of every epoch, as with DistributedSampler. A process that iterates the dataset again
        without a new ``set_epoch`` moves on to the next epoch by itself (persistent DataLoader
        workers keep their own copy of the dataset, which ``set_epoch`` in the main process does
        not reach)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self._epochs = EpochCounter(epoch=epoch, pending=self._epochs.pending)

    def __iter__(self) -> Iterator[Any]:
        epochs = self._epochs
        epoch = epochs.epoch + epochs.passes
        epochs.passes += 1
        resume, epochs.pending = epochs.pending, None
        return EpochIterator(self, epoch, resume)

    def state_dict(self) -> dict:
        """The epoch counter, and a loaded position not yet resumed from. Where a pass stands is its
        iterator's ``state_dict()``: StatefulDataLoader saves both."""
        return self._epochs.to_dict()

    def load_state_dict(self, state: dict) -> None:
        """Takes this dataset's ``state_dict()``, an iterator's, or ``elastic_state(...)``: the next
        pass resumes from the position it holds."""
        self._epochs = dataset_state_from_dict(state)

    @staticmethod
    def elastic_state(states) -> dict:
        """Merges the saved states of every rank of a stopped job (each rank's StatefulDataLoader
        ``state_dict()``, or the iterators' states) into one that a job with any number of ranks
        and workers loads with ``load_state_dict`` before iterating: every object the stopped job
        had not read in that epoch is then read exactly once, in the epoch's order."""
        return merge(find_positions(states)).to_dict()

    def _continue_epoch(self, epoch: int) -> None:
        """A pass of ``epoch`` resumed: the pass after it reads the next epoch."""
        self._epochs.epoch, self._epochs.passes = epoch, 1

    def _source_description(self) -> str:
        source = self._get_dataset_objects
        if isinstance(source, ObjectsUnderPrefix):
            return f"the listing of s3://{source.bucket}/{source.prefix}"
        if isinstance(source, ObjectsFromUris):
            return "the list of objects"
        return "the dataset's objects"

    def _samples(self, objects: Iterator[S3BucketKeyData]) -> Iterator[Any]:
        readers = ((self._reader(o), o.object_info.size if o.object_info else 0) for o in objects)
        return (self._sample(r) for r in self._read_ahead(readers))

    def _get_transformed_object(self, bucket_key: S3BucketKeyData) -> Any:
        return self._sample(self._reader(bucket_key))

    def _current_shard(self) -> Tuple[int, int]:
        """(this worker's shard, number of shards) over DataLoader workers and distributed ranks;
        (0, 1) without sharding, where every worker reads every object."""
        if not self._enable_sharding:
            return 0, 1
        worker = torch.utils.data.get_worker_info()
        worker_id, worker_count = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        rank, world_size = _process_group() or (self._rank, self._world_size)
        # The original's split: objects dealt to ranks in turn, then each rank's share to its workers.
        return worker_id * world_size + rank, world_size * worker_count

    def _read_ahead(self, readers: Iterator[Tuple[S3Reader, int]]) -> Iterator[S3Reader]:
        """Yields the readers in order while keeping the next ones' requests in flight.

        Sizes come from the listing (0 when objects were named without one).
        """
        pending: deque = deque()
        pending_bytes = 0
        for reader, size in readers:
            while pending and (len(pending) >= self._prefetch or pending_bytes + size > self._prefetch_bytes):
                ready, ready_size = pending.popleft()
                pending_bytes -= ready_size
                yield ready
            if self._prefetch == 0:
                yield reader
                continue
            reader.prefetch()
            pending.append((reader, size))
            pending_bytes += size
        while pending:
            yield pending.popleft()[0]


def _process_group() -> Optional[Tuple[int, int]]:
    """(rank, world size) of this process's torch.distributed group, None where it has none."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return None
