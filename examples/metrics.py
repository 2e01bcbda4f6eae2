"""Where did an epoch's time go on S3? Print each operation's requests, bytes, retries, throttles and
latency percentiles after an epoch read by DataLoader workers, and show S3 waits in a torch profile.

With no arguments it runs against an embedded local S3 server (moto, on 127.0.0.1) that it fills
with small objects. Point it at any S3 with --endpoint/--bucket/--prefix/--region.
"""

import argparse
from typing import Tuple

import torch
from local_s3 import add_s3_arguments, start_with_samples
from torch.utils.data import DataLoader, IterableDataset

from s3torchconnector import S3IterableDataset, merge_metrics


class ReportsMetrics(IterableDataset):
    """Yields the dataset's samples; when a worker's share is done, sends that worker's metrics home.

    Each DataLoader worker reads through its own copy of the dataset (and its own client), so each
    counts its own requests: the main process merges what the workers send.
    """

    def __init__(self, dataset: S3IterableDataset, outbox):
        self.dataset = dataset
        self.outbox = outbox

    def __iter__(self):
        yield from self.dataset
        self.outbox.put(self.dataset.metrics())


def read_epoch(dataset: S3IterableDataset, workers: int) -> Tuple[int, dict]:
    """One epoch through a DataLoader of ``workers`` forked workers: the samples read, and what the
    requests of every process that read them did, merged."""
    outbox = torch.multiprocessing.get_context("fork").SimpleQueue()
    loader = DataLoader(
        ReportsMetrics(dataset, outbox), batch_size=32, num_workers=workers, multiprocessing_context="fork"
    )
    samples = sum(len(batch) for batch in loader)
    return samples, merge_metrics(outbox.get() for _ in range(max(workers, 1)))


def print_table(metrics: dict) -> None:
    print(
        f"{'operation':<14} {'requests':>8} {'MB':>8} {'retries':>7} {'throttles':>9} {'5xx':>4} "
        f"{'stalls':>6}   first byte ms p50/p90/p99   duration ms p50/p90/p99"
    )
    for name, op in sorted(metrics["operations"].items()):
        first, whole = op["first_byte_ms"], op["duration_ms"]
        print(
            f"{name:<14} {op['requests']:>8} {op['bytes'] / 1e6:>8.2f} {op['retries']:>7} {op['throttles']:>9} "
            f"{op['server_errors']:>4} {op['stalls_dropped']:>6}   "
            f"{first['p50']:>7} {first['p90']:>7} {first['p99']:>7}   "
            f"{whole['p50']:>7} {whole['p90']:>7} {whole['p99']:>7}"
        )
    print(f"peak connections (all workers): {metrics['peak_connections']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_s3_arguments(parser, bucket="metrics-example", prefix="metrics/")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    start_with_samples(args)

    dataset = S3IterableDataset.from_prefix(
        f"s3://{args.bucket}/{args.prefix}",
        region=args.region,
        endpoint=args.endpoint,
        transform=lambda reader: len(reader.read()),
        enable_sharding=True,
    )
    samples, metrics = read_epoch(dataset, args.workers)
    print(f"\none epoch: {samples} samples read by {args.workers} workers")
    print_table(metrics)

    # The same reads under torch.profiler: each wait on S3 is a span named after its operation.
    with torch.profiler.profile() as profile:
        for _, _ in zip(range(50), dataset):
            pass
    print("\nS3 waits in a torch profile of 50 samples read in this process:")
    print(
        profile.key_averages()
        .table(sort_by="cpu_time_total", row_limit=4, max_name_column_width=30)
        .split("\n", 1)[1]
        .rstrip()
    )


if __name__ == "__main__":
    main()
