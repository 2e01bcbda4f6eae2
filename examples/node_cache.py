"""Several epochs through the node cache: the first downloads each object once, the next ones read
local disk. Prints each epoch's time, GETs and cache hits, merged over the DataLoader workers.

With no arguments it runs against an embedded local S3 server (moto, on 127.0.0.1) that it fills
with small objects, and keeps the cache in a temporary folder. Point it at any S3 with
--endpoint/--bucket/--prefix/--region, and at a local disk with --cache-dir.
"""

import argparse
import tempfile
import time

from local_s3 import add_s3_arguments, start_with_samples
from metrics import read_epoch

from s3torchconnector import S3ClientConfig, S3IterableDataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_s3_arguments(parser, bucket="cache-example", prefix="train/")
    parser.add_argument("--cache-dir", help="a folder on local disk; a temporary one by default")
    parser.add_argument("--cache-max-bytes", default="1GiB")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    start_with_samples(args)

    with tempfile.TemporaryDirectory() as scratch:
        config = S3ClientConfig(cache_dir=args.cache_dir or scratch, cache_max_bytes=args.cache_max_bytes)
        dataset = S3IterableDataset.from_prefix(
            f"s3://{args.bucket}/{args.prefix}",
            region=args.region,
            endpoint=args.endpoint,
            transform=lambda reader: len(reader.read()),
            enable_sharding=True,
            s3client_config=config,
        )
        print(f"{'epoch':>5} {'samples':>8} {'seconds':>8} {'GETs':>6} {'cache hits':>10} {'MB from cache':>13}")
        for epoch in range(args.epochs):
            # Workers are new processes each epoch: each reports what its own client did.
            started = time.perf_counter()
            samples, metrics = read_epoch(dataset, args.workers)
            seconds = time.perf_counter() - started
            gets = metrics["operations"].get("GetObject", {}).get("requests", 0)
            cache = metrics["cache"]
            print(
                f"{epoch:>5} {samples:>8} {seconds:>8.2f} {gets:>6} {cache['hits']:>10} "
                f"{cache['bytes_from_cache'] / 1e6:>13.1f}"
            )


if __name__ == "__main__":
    main()
