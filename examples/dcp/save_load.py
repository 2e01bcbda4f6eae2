"""Save a model and its optimizer with PyTorch Distributed Checkpoint from 2 ranks straight to S3,
load them back, then load only the model (fetching only its bytes).

Two processes (gloo, CPU) are started here; each rank writes its own files through
S3StorageWriter, under prefixes chosen by a prefix strategy (--strategy).

With no arguments it runs against an embedded local S3 server (moto, on 127.0.0.1). Point it at
any S3 with --endpoint/--bucket/--prefix/--region (real S3: leave --endpoint out).
"""

import argparse
import os
import pathlib
import sys
import tempfile
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp

from s3torchconnector._s3client import S3Client
from s3torchconnector.dcp import (
    BinaryPrefixStrategy,
    DefaultPrefixStrategy,
    HexPrefixStrategy,
    RoundRobinPrefixStrategy,
    S3StorageReader,
    S3StorageWriter,
)

# The examples share one helper for the embedded server.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from local_s3 import start_local_s3  # noqa: E402

WORLD_SIZE = 2
STRATEGIES = {
    "default": DefaultPrefixStrategy,
    "binary": BinaryPrefixStrategy,
    "hex": HexPrefixStrategy,
    "round-robin": lambda: RoundRobinPrefixStrategy(["shard-a", "shard-b"]),
}


def build(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(16, 512)).logsumexp(dim=1).mean().backward()
    optimizer.step()
    return model, optimizer


def run(rank: int, args, init_file: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE, timeout=timedelta(seconds=120)
    )
    try:
        uri = f"s3://{args.bucket}/{args.prefix}checkpoint"
        model, optimizer = build(seed=0)  # the same replicated model on every rank
        state = {"model": model.state_dict(), "optim": optimizer.state_dict()}
        writer = S3StorageWriter(args.region, uri, prefix_strategy=STRATEGIES[args.strategy](), endpoint=args.endpoint)
        dcp.save(state, storage_writer=writer)

        fresh_model, fresh_optimizer = build(seed=1)
        target = {"model": fresh_model.state_dict(), "optim": fresh_optimizer.state_dict()}
        dcp.load(target, storage_reader=S3StorageReader(args.region, uri, endpoint=args.endpoint))
        fresh_model.load_state_dict(target["model"])
        fresh_optimizer.load_state_dict(target["optim"])
        same = all(torch.equal(v, fresh_model.state_dict()[k]) for k, v in model.state_dict().items())

        # Only the model: the default DCP-optimized reader fetches just the model's byte ranges.
        only_model = {"model": build(seed=2)[0].state_dict()}
        dcp.load(only_model, storage_reader=S3StorageReader(args.region, uri, endpoint=args.endpoint))
        same_again = all(torch.equal(v, only_model["model"][k]) for k, v in model.state_dict().items())
        print(f"rank {rank}: full load matches: {same}; model-only load matches: {same_again}", flush=True)
        if not (same and same_again):
            raise SystemExit(f"rank {rank}: loaded weights differ")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--endpoint", help="S3 endpoint URL; without it (and without --bucket) a local server is started"
    )
    parser.add_argument("--bucket", help="bucket to write to (default: a local server's 'dcp-example')")
    parser.add_argument("--prefix", default="dcp-example/")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--strategy", choices=sorted(STRATEGIES), default="round-robin")
    args = parser.parse_args()
    if not args.prefix.endswith("/"):
        args.prefix += "/"

    if args.bucket is None:
        # start_local_s3 sets dummy credentials in the environment; the ranks inherit them.
        args.bucket = "dcp-example"
        args.endpoint = start_local_s3(args.bucket)

    with tempfile.TemporaryDirectory() as scratch:
        mp.spawn(run, args=(args, os.path.join(scratch, "pg-init")), nprocs=WORLD_SIZE, join=True)

    client = S3Client(args.region, endpoint=args.endpoint)
    listing = [o for page in client.list_objects(args.bucket, f"{args.prefix}checkpoint/") for o in page.object_info]
    print(f"checkpoint written by {WORLD_SIZE} ranks with the {args.strategy!r} prefix strategy:")
    for info in sorted(listing, key=lambda o: o.key):
        print(f"  s3://{args.bucket}/{info.key}  {info.size} bytes")


if __name__ == "__main__":
    main()
