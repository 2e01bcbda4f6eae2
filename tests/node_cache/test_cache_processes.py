"""The node cache shared by processes: ranks and DataLoader workers (fork, spawn) download each
object once between them; a process killed or stuck mid-download blocks no one and leaves nothing
that can be served."""

import collections
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults.proxy import stall
from samples import payload

from .helpers import cached_client, disk_bytes, entry_files, gets, part_files

MIB = 1024 * 1024
TESTS = Path(__file__).resolve().parent.parent
TIMEOUT = 120

RANK = """
import hashlib, json, sys
from torch.utils.data import DataLoader
from s3torchconnector import S3IterableDataset, S3MapDataset


def digest(reader):
    return reader.key, hashlib.sha256(reader.read()).hexdigest()


def main():
    uri, endpoint, method, kind, out = sys.argv[1:6]
    # The code a user of the original writes: the cache is turned on by the environment alone.
    if kind == "map":
        dataset = S3MapDataset.from_prefix(uri, region="us-east-1", endpoint=endpoint, transform=digest)
    else:  # every worker reads every object: two processes of this rank want each one at once
        dataset = S3IterableDataset.from_prefix(uri, region="us-east-1", endpoint=endpoint, transform=digest)
    loader = DataLoader(dataset, batch_size=3, num_workers=2, multiprocessing_context=method, collate_fn=list)
    seen = [[key, sha] for epoch in range(2) for batch in loader for key, sha in batch]
    with open(out, "w") as file:
        json.dump(seen, file)


if __name__ == "__main__":
    main()
"""


def cache_environment(cache_dir, max_bytes: str = "64MiB") -> dict:
    return dict(
        os.environ,
        S3_TORCH_CONNECTOR_CACHE_DIR=str(cache_dir),
        S3_TORCH_CONNECTOR_CACHE_MAX_BYTES=max_bytes,
        PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        PYTHONFAULTHANDLER="1",
    )


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_ranks_and_workers_download_each_object_once(s3, proxy, cache_dir, tmp_path, method):
    objects = {f"shared/{i:03d}": payload(40_000 + i, seed=i) for i in range(30)}
    for key, data in objects.items():
        s3.put(key, data)
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    kinds = ["map", "iterable", "map"]
    ranks = [
        subprocess.Popen(
            [sys.executable, str(script), s3.uri("shared/"), proxy.url, method, kind, str(tmp_path / f"rank{i}.json")],
            env=cache_environment(cache_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, kind in enumerate(kinds)
    ]
    for rank in ranks:
        _, stderr = rank.communicate(timeout=TIMEOUT)
        assert rank.returncode == 0, stderr
    expected = {key: hashlib.sha256(data).hexdigest() for key, data in objects.items()}
    for i, kind in enumerate(kinds):
        seen = json.loads((tmp_path / f"rank{i}.json").read_text())
        assert all(expected[key] == sha for key, sha in seen)
        per_epoch = len(objects) * (1 if kind == "map" else 2)  # each iterable worker reads them all
        assert len(seen) == 2 * per_epoch and {key for key, _ in seen} == set(expected)
    # 3 ranks x 2 workers x 2 epochs, 300 reads of 30 objects: 30 GETs, and no HEAD (the listing's ETags).
    downloads = collections.Counter(e.request.path for e in proxy.requests(lambda r: r.method == "GET" and not r.query))
    assert sum(downloads.values()) == len(objects), [
        (e.request.path, e.action, e.status) for e in proxy.log if downloads[e.request.path] > 1
    ]
    assert not proxy.requests(lambda r: r.method == "HEAD")
    assert len(entry_files(cache_dir)) == len(objects) and not part_files(cache_dir)


DOWNLOADER = """
import sys
from s3torchconnector._s3client import S3Client, S3ClientConfig

endpoint, bucket, key, cache_dir = sys.argv[1:5]
client = S3Client("us-east-1", endpoint=endpoint, s3client_config=S3ClientConfig(cache_dir=cache_dir))
client.get_object(bucket, key).read()  # stalls after its first 8 MiB, until killed
"""


def test_a_stuck_or_killed_downloader_blocks_no_one(s3, proxy, cache_dir, caplog):
    data = payload(12 * MIB + 5, seed=9)
    s3.put("big.bin", data)
    # The part from 8 MiB on stalls, once: the downloader has written 8 MiB to its `.part` and waits.
    proxy.add(lambda r: r.method == "GET" and (r.range_start or 0) >= 8 * MIB, stall(TIMEOUT), limit=1)
    child = subprocess.Popen(
        [sys.executable, "-c", DOWNLOADER, proxy.url, s3.bucket, "big.bin", str(cache_dir)],
        env=cache_environment(cache_dir),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not any(p.stat().st_size > 8 * MIB for p in part_files(cache_dir)):
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the downloader never wrote its first 8 MiB"
            time.sleep(0.05)
        # Another process's download that stopped moving: after the stall timeout, read from S3.
        client = cached_client(proxy.url, cache_dir, stall_timeout_seconds=1)
        with caplog.at_level(logging.WARNING, logger="s3torchconnector"):
            assert client.get_object(s3.bucket, "big.bin").read() == data
        assert "stopped moving" in caplog.text, client.metrics()
        assert client.metrics()["cache"]["fallbacks"] == 1
        assert not entry_files(cache_dir)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=TIMEOUT)
    (left,) = part_files(cache_dir)
    assert left.stat().st_size > 8 * MIB  # what the dead process wrote, never renamed into place
    assert client.get_object(s3.bucket, "big.bin").read() == data  # its lock died with it: taken over
    assert len(entry_files(cache_dir)) == 1 and not part_files(cache_dir)
    before = gets(proxy)
    assert client.get_object(s3.bucket, "big.bin").read() == data
    assert gets(proxy) == before


READER = """
import hashlib, json, random, sys
from s3torchconnector._s3client import S3Client

endpoint, bucket, expected_path, seed = sys.argv[1:5]
expected = json.load(open(expected_path))
keys = sorted(expected)
random.Random(int(seed)).shuffle(keys)
client = S3Client("us-east-1", endpoint=endpoint)  # the cache from the environment
for _ in range(2):
    for key in keys:
        assert hashlib.sha256(client.get_object(bucket, key).read()).hexdigest() == expected[key], key
print(json.dumps(client.metrics()["cache"]))
"""


def test_the_bound_holds_while_processes_evict(s3, proxy, cache_dir, tmp_path):
    objects = {f"evict/{i:03d}": payload(100_000 + i, seed=i) for i in range(40)}
    for key, data in objects.items():
        s3.put(key, data)
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({key: hashlib.sha256(data).hexdigest() for key, data in objects.items()}))
    bound = 600_000  # five entries
    largest = 0
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, proxy.url, s3.bucket, str(expected), str(seed)],
            env=cache_environment(cache_dir, max_bytes=str(bound)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(3)
    ]
    while any(reader.poll() is None for reader in readers):  # watched on disk while they read
        largest = max(largest, disk_bytes(entry_files(cache_dir)))
        time.sleep(0.002)
    counters = []
    for reader in readers:
        stdout, stderr = reader.communicate(timeout=TIMEOUT)
        assert reader.returncode == 0, stderr
        counters.append(json.loads(stdout))
    assert 0 < largest <= bound
    assert sum(c["evictions"] for c in counters) > 0 and sum(c["hits"] for c in counters) > 0
