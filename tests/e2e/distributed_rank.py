"""One rank of the distributed sharding test (tests/e2e/test_distributed.py), run as a script so that
spawn and forkserver DataLoader workers can import its transform.

argv: endpoint bucket prefix start_method. Env: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
Prints one JSON list: [[case, reader, key, sha256], ...] with what this rank read.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch.distributed
from torch.utils.data import ChainDataset, ConcatDataset, DataLoader, DistributedSampler

from s3torchconnector import S3IterableDataset, S3MapDataset, S3ReaderConstructor

# samples is tests/samples.py: tests/ goes on sys.path as pytest puts it there (this script runs in its
# own interpreter, which has only tests/e2e). DataLoader workers started by spawn or forkserver get this
# sys.path from their parent.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from samples import keep_list  # noqa: E402

REGION = "us-east-1"
READERS = {
    "sequential": S3ReaderConstructor.sequential,
    "range_based": S3ReaderConstructor.range_based,
    "dcp_optimized": S3ReaderConstructor.dcp_optimized,
}


class Describe:
    """The transform: which case and reader read which object, and a digest of the bytes it got."""

    def __init__(self, case, reader_name):
        self.case, self.reader_name = case, reader_name

    def __call__(self, reader):
        return [self.case, self.reader_name, reader.key, hashlib.sha256(reader.read()).hexdigest()]


def datasets(case, kind, endpoint, uri, **iterable_options):
    """One dataset per reader kind, all over the same objects."""
    made = []
    for name, reader in READERS.items():
        options = dict(region=REGION, endpoint=endpoint, transform=Describe(case, name), reader_constructor=reader())
        if kind == "iterable":
            made.append(S3IterableDataset.from_prefix(uri, enable_sharding=True, **options, **iterable_options))
        else:
            made.append(S3MapDataset.from_prefix(uri, **options))
    return made


def read_all(kind, built, num_workers, start_method):
    """One DataLoader over all the datasets (chained or concatenated): worker start-up, the costly
    part with spawn and forkserver, is paid once for all the cases."""
    context = start_method if num_workers else None
    loader_options = dict(batch_size=3, collate_fn=keep_list, num_workers=num_workers, multiprocessing_context=context)
    if kind == "iterable":
        loader = DataLoader(ChainDataset(built), **loader_options)
    else:
        dataset = ConcatDataset(built)
        loader = DataLoader(dataset, sampler=DistributedSampler(dataset, shuffle=False), **loader_options)
    return [sample for batch in loader for sample in batch]


def main():
    endpoint, bucket, prefix, start_method = sys.argv[1:5]
    uri = f"s3://{bucket}/{prefix}"
    # Built before the process group exists, as some training scripts do: the iterable datasets must
    # still learn their rank (when pickled for spawned workers, or in this process when iterated).
    early = datasets("iterable-built-before-init", "iterable", endpoint, uri)
    torch.distributed.init_process_group("gloo", rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    seen = []
    for num_workers in (0, 1, 3):
        iterable = (
            early
            + datasets("iterable", "iterable", endpoint, uri)
            + datasets("iterable-shuffled", "iterable", endpoint, uri, shuffle=True, seed=3, shuffle_buffer_size=2)
        )
        for kind, built in (("iterable", iterable), ("map", datasets("map", "map", endpoint, uri))):
            seen += [
                [f"{case}-{num_workers}", *rest] for case, *rest in read_all(kind, built, num_workers, start_method)
            ]
    print(json.dumps(seen))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
