"""Elastic resume against a real S3 API: a job of 2 gloo ranks x 2 DataLoader workers stops mid-epoch
and saves each rank's StatefulDataLoader state; a job of 3 ranks x 1 worker merges those states with
S3IterableDataset.elastic_state() and finishes the epoch. Every object is read exactly once."""

import collections
from pathlib import Path

from gloo_ranks import run_ranks

SCRIPT = Path(__file__).with_name("elastic_rank.py")
N_OBJECTS = 40


def test_two_ranks_of_two_workers_resume_as_three_ranks_of_one(s3, tmp_path):
    keys = [f"data/{i:03d}" for i in range(N_OBJECTS)]
    for key in keys:
        s3.put(key, key.encode())

    before = run_ranks(SCRIPT, [s3.endpoint, s3.bucket, "before", tmp_path], world_size=2)
    after = run_ranks(SCRIPT, [s3.endpoint, s3.bucket, "after", tmp_path], world_size=3)

    read_before = [key for rank in before for key in rank]
    read_after = [key for rank in after for key in rank]
    assert len(read_before) == 2 * 2 * 3  # 2 ranks x 2 batches x 3 objects
    counts = collections.Counter(read_before + read_after)
    assert sorted(counts) == keys, "some objects were never read"
    assert [key for key, n in counts.items() if n > 1] == [], "some objects were read twice"
    assert all(rank for rank in after), "each of the 3 new ranks took a share"
