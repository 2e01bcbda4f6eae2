"""The examples run end to end, as a user would run them (their own embedded S3 server)."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_metrics_example_prints_what_the_workers_did():
    result = subprocess.run(
        [sys.executable, "metrics.py", "--samples", "60", "--workers", "2"],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert "one epoch: 60 samples read by 2 workers" in result.stdout
    assert rows["GetObject"][1] == "60"  # both workers' GETs, merged: one per sample
    assert rows["ListObjectsV2"][1] == "2"  # each worker lists the prefix once
    assert "s3torchconnector.GetObject" in result.stdout  # the profile's S3 waits


def test_node_cache_example_downloads_once_then_reads_local_disk():
    result = subprocess.run(
        [sys.executable, "node_cache.py", "--samples", "40", "--workers", "2", "--epochs", "3"],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    epochs = [line.split() for line in result.stdout.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [row[:2] for row in epochs] == [["0", "40"], ["1", "40"], ["2", "40"]]
    assert [int(row[3]) for row in epochs] == [40, 0, 0]  # GETs: the first epoch only
    assert [int(row[4]) for row in epochs] == [0, 40, 40]  # cache hits
