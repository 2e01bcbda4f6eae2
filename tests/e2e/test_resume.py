"""Exact mid-epoch resume through torchdata's StatefulDataLoader, against a real S3 API: a job that
saves the loader's state after some batches and dies is resumed by a NEW process from that state,
and yields exactly the batches the uninterrupted pass would have yielded, in the same order.
0, 2 and 3 workers; fork and spawn; listing order and seeded shuffle (with a shuffle buffer)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("resume_run.py")


def run_phase(s3, phase, state_dir):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), s3.endpoint, s3.bucket, phase, str(state_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{phase} failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_new_process_resumes_exactly_where_the_saved_state_stopped(s3, tmp_path):
    for i in range(30):
        s3.put(f"data/{i:03d}", b"x" * (i + 1))

    before = run_phase(s3, "before", tmp_path)
    after = run_phase(s3, "after", tmp_path)

    for case, run in before.items():
        full = run["full"]
        assert sorted(key for batch in full for key in batch) == [f"data/{i:03d}" for i in range(30)], case
        assert run["before"] == full[: len(run["before"])], case
        assert run["before"] + after[case]["after"] == full, case
    shuffled = [
        [key for batch in run["full"] for key in batch] for case, run in before.items() if "shuffle=True" in case
    ]
    assert shuffled and all(keys != sorted(keys) for keys in shuffled)
