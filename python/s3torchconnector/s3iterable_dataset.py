"""S3IterableDataset: streams the objects under a prefix (or a list of URIs), in order."""

from collections import deque
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

import torch.distributed
import torch.utils.data

from ._s3client import S3Client, S3ClientConfig
from ._s3dataset_common import S3BucketKeyData, identity
from .s3dataset_base import S3DatasetBase
from .s3reader import S3Reader
from .s3reader.protocol import S3ReaderConstructorProtocol

DEFAULT_PREFETCH = 64
DEFAULT_PREFETCH_BYTES = 256 * 1024 * 1024


class S3IterableDataset(S3DatasetBase, torch.utils.data.IterableDataset):
    """Yields ``transform(reader)`` for each object, in listing order.

    The next ``prefetch`` objects (at most ``prefetch_bytes`` of them by their listed sizes) are
    already being fetched while the current one is consumed, so many small objects do not wait
    on one request at a time. With ``enable_sharding=True`` the objects are split across
    DataLoader workers and ``torch.distributed`` ranks: each is read once per epoch in all.
    Make one with ``from_prefix`` or ``from_objects``.
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
        prefetch: int = DEFAULT_PREFETCH,
        prefetch_bytes: int = DEFAULT_PREFETCH_BYTES,
    ):
        if not isinstance(enable_sharding, bool):
            raise TypeError(f"enable_sharding must be a bool, got {enable_sharding!r}")
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

    def __iter__(self) -> Iterator[Any]:
        objects: Iterable[S3BucketKeyData] = self._get_dataset_objects(self._get_client())
        if self._enable_sharding:
            shard, shard_count = self._current_shard()
            objects = (o for i, o in enumerate(objects) if i % shard_count == shard)
        readers = ((self._reader(o), o.object_info.size if o.object_info else 0) for o in objects)
        return (self._transform(r) for r in self._read_ahead(readers))

    def _get_transformed_object(self, bucket_key: S3BucketKeyData) -> Any:
        return self._transform(self._reader(bucket_key))

    def _current_shard(self) -> Tuple[int, int]:
        """(this worker's shard, number of shards) over DataLoader workers and distributed ranks."""
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
