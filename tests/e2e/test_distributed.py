"""Datasets under torch.distributed: 3 gloo ranks on 127.0.0.1, each with a DataLoader of 0, 1 or 3
workers started by fork, spawn or forkserver, over both dataset kinds and every reader. Across the
ranks and workers, every object is read exactly once per epoch, with its bytes."""

import collections
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORLD_SIZE = 3
# 21 objects: a multiple of 3 ranks (DistributedSampler pads otherwise), and not of 9 shards
# (3 ranks x 3 workers), so the iterable split is uneven.
N_OBJECTS = 21
RANK_SCRIPT = Path(__file__).with_name("distributed_rank.py")
READERS = ("sequential", "range_based", "dcp_optimized")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(s3, start_method):
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(WORLD_SIZE))
    env["PYTHONFAULTHANDLER"] = "1"
    ranks = [
        subprocess.Popen(
            [sys.executable, str(RANK_SCRIPT), s3.endpoint, s3.bucket, "data/", start_method],
            env=dict(env, RANK=str(rank)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(WORLD_SIZE)
    ]
    outputs = []
    try:
        for rank, process in enumerate(ranks):
            stdout, stderr = process.communicate(timeout=600)
            assert process.returncode == 0, f"rank {rank} failed:\n{stderr[-4000:]}"
            outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for process in ranks:
            process.kill()
    return outputs


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_every_object_once_across_ranks_and_workers(s3, start_method):
    digests = {}
    for i in range(N_OBJECTS):
        body = f"object {i} ".encode() * (100 + 37 * i)
        s3.put(f"data/{i:03d}.bin", body)
        digests[f"data/{i:03d}.bin"] = hashlib.sha256(body).hexdigest()
    s3.put("elsewhere/not-in-dataset.bin", b"x")

    per_rank = run_ranks(s3, start_method)

    expected = collections.Counter((reader, key) for reader in READERS for key in digests)
    for case in per_rank[0]:
        samples = [tuple(sample) for rank_seen in per_rank for sample in rank_seen[case]]
        assert all(digest == digests[key] for _, key, digest in samples), f"{case}: wrong bytes"
        counts = collections.Counter((reader, key) for reader, key, _ in samples)
        assert counts == expected, (
            f"{case}: read more than once: {sorted(k for k, n in counts.items() if n > 1)[:5]}; "
            f"never read: {sorted(expected - counts)[:5]}"
        )
        # Each rank read a share, not everything: the split happened across ranks.
        assert all(len(rank_seen[case]) < len(samples) for rank_seen in per_rank), case
