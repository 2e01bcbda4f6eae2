"""A MixedDataset's pass resumed in new processes, against a real S3 API: 2 gloo ranks x 2 spawn
DataLoader workers stop mid-pass and save their StatefulDataLoader states; new ranks of the same
layout continue exactly as the uninterrupted pass did, and 3 ranks x 1 worker resuming from the
merged states read every sample not yet read exactly once."""

import collections
from pathlib import Path

import pytest
from gloo_ranks import run_ranks

SCRIPT = Path(__file__).with_name("mixture_rank.py")
SOURCES = {"web": 24, "code": 16, "books": 10}


@pytest.fixture
def sources(s3):
    for name, count in SOURCES.items():
        for i in range(count):
            s3.put(f"{name}/{i:03d}", b"x")
    return s3


def ranks(s3, stop, phase, state_dir, world_size=2):
    return run_ranks(SCRIPT, [s3.endpoint, s3.bucket, stop, phase, state_dir], world_size=world_size)


def test_all_exhausted_resumes_exactly_and_elastically(sources, tmp_path):
    full = ranks(sources, "all_exhausted", "full", tmp_path)
    before = ranks(sources, "all_exhausted", "before", tmp_path)
    exact = ranks(sources, "all_exhausted", "exact", tmp_path)
    elastic = ranks(sources, "all_exhausted", "elastic", tmp_path, world_size=3)

    every = sorted(f"{name}/{i:03d}" for name, count in SOURCES.items() for i in range(count))
    assert sorted(key for rank in full for key in rank) == every
    for rank in range(2):
        assert before[rank] + exact[rank] == full[rank], f"rank {rank} did not continue where it stopped"
    read = collections.Counter([key for rank in before for key in rank] + [key for rank in elastic for key in rank])
    assert sorted(read) == every, "some samples were never read"
    assert [key for key, n in read.items() if n > 1] == [], "some samples were read twice"
    assert all(elastic), "each of the 3 new ranks took a share"


def test_never_resumes_exactly(sources, tmp_path):
    full = ranks(sources, "never", "full", tmp_path)
    before = ranks(sources, "never", "before", tmp_path)
    exact = ranks(sources, "never", "exact", tmp_path)
    for rank in range(2):
        assert before[rank] + exact[rank] == full[rank], f"rank {rank} did not continue where it stopped"
        assert len(full[rank]) == 12 * 3  # LIMIT batches of 3: the stream does not end
