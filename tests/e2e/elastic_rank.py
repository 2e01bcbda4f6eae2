"""One rank of the elastic resume test (tests/e2e/test_elastic_resume.py).

argv: endpoint bucket phase state_dir. Env: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
Phase "before": 2 workers per rank read STOP batches, then the rank saves its StatefulDataLoader
state (as a training job does with its checkpoint) and stops. Phase "after": with any number of ranks,
each loads the states of every rank of the stopped job, merged by elastic_state(), and reads to the
end of the epoch with 1 worker. Prints the keys this rank read, as JSON.
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

from s3torchconnector import S3IterableDataset

# samples is tests/samples.py: tests/ goes on sys.path as pytest puts it there (this script runs in its
# own interpreter, which has only tests/e2e). DataLoader workers started by spawn or forkserver get this
# sys.path from their parent.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from samples import keep_list, key_of  # noqa: E402

STOP = 2


def main():
    endpoint, bucket, phase, state_dir = sys.argv[1:5]
    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()
    dataset = S3IterableDataset.from_prefix(
        f"s3://{bucket}/data/",
        region="us-east-1",
        endpoint=endpoint,
        transform=key_of,
        enable_sharding=True,
        shuffle=True,
        seed=21,
        shuffle_buffer_size=4,
    )
    options = dict(batch_size=3, collate_fn=keep_list, multiprocessing_context="fork")
    if phase == "before":
        loader = StatefulDataLoader(dataset, num_workers=2, **options)
        batches = list(islice(iter(loader), STOP))
        torch.save(loader.state_dict(), os.path.join(state_dir, f"rank{rank}.pt"))
    else:
        states = [torch.load(path, weights_only=False) for path in sorted(glob.glob(os.path.join(state_dir, "*.pt")))]
        dataset.load_state_dict(S3IterableDataset.elastic_state(states))
        batches = list(StatefulDataLoader(dataset, num_workers=1, **options))
    print(json.dumps([key for batch in batches for key in batch]))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
