"""Which share of an iterable dataset this process reads: its torch.distributed rank and its
DataLoader worker, numbered as the original numbers them."""

from typing import Optional, Tuple

import torch.distributed
import torch.utils.data


def process_group() -> Optional[Tuple[int, int]]:
    """(rank, world size) of this process's torch.distributed group, None where it has none."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return None


def worker_shard(rank: int, world_size: int) -> Tuple[int, int]:
    """(this worker's shard, number of shards) over DataLoader workers and distributed ranks.
    ``rank`` and ``world_size`` count where this process has no group of its own (a DataLoader
    worker started by spawn or forkserver: its dataset took them when it was pickled)."""
    worker = torch.utils.data.get_worker_info()
    worker_id, worker_count = (worker.id, worker.num_workers) if worker is not None else (0, 1)
    rank, world_size = process_group() or (rank, world_size)
    # The original's split: objects dealt to ranks in turn, then each rank's share to its workers.
    return worker_id * world_size + rank, world_size * worker_count
