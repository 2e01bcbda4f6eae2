"""One process of the exact-resume test (tests/e2e/test_resume.py), run as a script: a new process
resumes the state another one saved. Its transform and collate function are tests/samples.py's, which
spawn DataLoader workers import.

argv: endpoint bucket phase state_dir. Phase "before": for every case, the batches of an
uninterrupted pass, then the first STOP batches of another pass and its StatefulDataLoader state,
saved to state_dir. Phase "after": in this new process, each case's state loaded into a new loader,
and the batches that follow. Prints one JSON object: {case: {...batches...}}.
"""

import json
import os
import sys
from itertools import islice
from pathlib import Path

import torch
from torchdata.stateful_dataloader import StatefulDataLoader

from s3torchconnector import S3IterableDataset

# samples is tests/samples.py: tests/ goes on sys.path as pytest puts it there (this script runs in its
# own interpreter, which has only tests/e2e). DataLoader workers started by spawn or forkserver get this
# sys.path from their parent.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from samples import keep_list, key_of  # noqa: E402

REGION = "us-east-1"
STOP = 3  # batches taken before the job "dies"
CASES = [
    (workers, method, shuffle)
    for workers in (0, 2, 3)
    for method in (("fork", "spawn") if workers else ("none",))
    for shuffle in (False, True)
]


def loader(endpoint, bucket, workers, method, shuffle):
    dataset = S3IterableDataset.from_prefix(
        f"s3://{bucket}/data/",
        region=REGION,
        endpoint=endpoint,
        transform=key_of,
        enable_sharding=True,
        shuffle=shuffle,
        seed=13,
        shuffle_buffer_size=3 if shuffle else 0,
    )
    return StatefulDataLoader(
        dataset,
        batch_size=4,
        collate_fn=keep_list,
        num_workers=workers,
        multiprocessing_context=None if method == "none" else method,
    )


def main():
    endpoint, bucket, phase, state_dir = sys.argv[1:5]
    out = {}
    for workers, method, shuffle in CASES:
        case = f"workers={workers},{method},shuffle={shuffle}"
        state_path = os.path.join(state_dir, case + ".pt")
        if phase == "before":
            full = list(loader(endpoint, bucket, workers, method, shuffle))
            stopped = loader(endpoint, bucket, workers, method, shuffle)
            before = list(islice(iter(stopped), STOP))
            torch.save(stopped.state_dict(), state_path)
            out[case] = {"full": full, "before": before}
        else:
            resumed = loader(endpoint, bucket, workers, method, shuffle)
            resumed.load_state_dict(torch.load(state_path, weights_only=False))
            out[case] = {"after": list(resumed)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
