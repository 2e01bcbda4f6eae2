"""One rank of the mixture resume test (tests/e2e/test_mixture_resume.py).

argv: endpoint bucket stop phase state_dir. Env: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
Each rank reads a MixedDataset of three sharded, shuffled sources through a StatefulDataLoader
with spawn workers. Phases: "full", an uninterrupted pass (2 workers); "before", STOP batches, then
the rank's loader state saved to state_dir; "exact", a new loader that loads this rank's own state
and reads on (2 workers); "elastic", any number of ranks with 1 worker each, resuming from the
merge of every saved state. With stop="never" a pass is cut at LIMIT batches. Prints the keys this
rank read, as JSON.
"""

import glob
import json
import os
import sys
from itertools import islice
from pathlib import Path

import torch
import torch.distributed
from torchdata.stateful_dataloader import StatefulDataLoader

from s3torchconnector import MixedDataset, S3IterableDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/samples.py (see elastic_rank.py)
from samples import keep_list, key_of  # noqa: E402

SOURCES = ("web", "code", "books")
STOP = 3
LIMIT = 12


def main():
    endpoint, bucket, stop, phase, state_dir = sys.argv[1:6]
    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()
    sources = [
        S3IterableDataset.from_prefix(
            f"s3://{bucket}/{name}/",
            region="us-east-1",
            endpoint=endpoint,
            transform=key_of,
            enable_sharding=True,
            shuffle=True,
            seed=17,
        )
        for name in SOURCES
    ]
    mixed = MixedDataset(sources, [0.5, 0.3, 0.2], seed=5, stop=stop)
    workers = 1 if phase == "elastic" else 2
    loader = StatefulDataLoader(
        mixed, batch_size=3, num_workers=workers, collate_fn=keep_list, multiprocessing_context="spawn"
    )
    limit = LIMIT if stop == "never" else None
    if phase == "before":
        batches = list(islice(iter(loader), STOP))
        torch.save(loader.state_dict(), os.path.join(state_dir, f"rank{rank}.pt"))
    elif phase == "exact":
        loader.load_state_dict(torch.load(os.path.join(state_dir, f"rank{rank}.pt"), weights_only=False))
        batches = list(islice(loader, None if limit is None else limit - STOP))
    else:
        if phase == "elastic":
            states = [torch.load(path, weights_only=False) for path in sorted(glob.glob(f"{state_dir}/*.pt"))]
            mixed.load_state_dict(MixedDataset.elastic_state(states))
        batches = list(islice(loader, limit))
    print(json.dumps([key for batch in batches for key in batch]))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
