"""Datasets under torch.distributed: 3 gloo ranks on 127.0.0.1, each with a DataLoader of 0, 1 or 3
workers started by fork, spawn or forkserver, over both dataset kinds and every reader. Across the
ranks and workers, every object is read exactly once per epoch, with its bytes."""

import collections
import hashlib
from pathlib import Path

import pytest
from gloo_ranks import run_ranks

WORLD_SIZE = 3
# 21 objects: a multiple of 3 ranks (DistributedSampler pads otherwise), and not of 9 shards
# (3 ranks x 3 workers), so the iterable split is uneven.
N_OBJECTS = 21
RANK_SCRIPT = Path(__file__).with_name("distributed_rank.py")
READERS = ("sequential", "range_based", "dcp_optimized")


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_every_object_once_across_ranks_and_workers(s3, start_method):
    digests = {}
    for i in range(N_OBJECTS):
        body = f"object {i} ".encode() * (100 + 37 * i)
        s3.put(f"data/{i:03d}.bin", body)
        digests[f"data/{i:03d}.bin"] = hashlib.sha256(body).hexdigest()
    s3.put("elsewhere/not-in-dataset.bin", b"x")

    per_rank = run_ranks(RANK_SCRIPT, [s3.endpoint, s3.bucket, "data/", start_method], WORLD_SIZE)

    expected = collections.Counter((reader, key) for reader in READERS for key in digests)
    cases = sorted({sample[0] for rank_seen in per_rank for sample in rank_seen})
    assert len(cases) == 4 * 3, cases  # 4 cases x 3 worker counts
    for case in cases:
        by_rank = [[sample[1:] for sample in rank_seen if sample[0] == case] for rank_seen in per_rank]
        samples = [tuple(sample) for rank_samples in by_rank for sample in rank_samples]
        assert all(digest == digests[key] for _, key, digest in samples), f"{case}: wrong bytes"
        counts = collections.Counter((reader, key) for reader, key, _ in samples)
        assert counts == expected, (
            f"{case}: read more than once: {sorted(k for k, n in counts.items() if n > 1)[:5]}; "
            f"never read: {sorted(expected - counts)[:5]}"
        )
        # Each rank read a share, not everything: the split happened across ranks.
        assert all(len(rank_samples) < len(samples) for rank_samples in by_rank), case
