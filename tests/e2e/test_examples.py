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
