"""Helpers of the node cache's tests."""

import os
from pathlib import Path
from typing import List

from faults.proxy import FaultProxy

from s3torchconnector._s3client import S3Client, S3ClientConfig


def cached_client(endpoint: str, cache_dir, max_bytes="64MiB", **config) -> S3Client:
    return S3Client(
        "us-east-1",
        endpoint=endpoint,
        s3client_config=S3ClientConfig(cache_dir=str(cache_dir), cache_max_bytes=max_bytes, **config),
    )


def gets(proxy: FaultProxy, key_part: str = "") -> int:
    """GETs of objects (not listings) the server answered, of keys containing ``key_part``."""
    return len(proxy.requests(lambda r: r.method == "GET" and not r.query and key_part in r.path))


def heads(proxy: FaultProxy) -> int:
    return len(proxy.requests(lambda r: r.method == "HEAD"))


def entry_files(cache_dir) -> List[Path]:
    """The cache's complete entries (not the lock, not downloads in progress)."""
    root = Path(cache_dir) / "s3torchconnector-cache-v1"
    return [p for p in root.glob("*/*") if p.is_file() and not p.name.endswith(".part")]


def part_files(cache_dir) -> List[Path]:
    return list((Path(cache_dir) / "s3torchconnector-cache-v1").glob("*/*.part"))


def disk_bytes(paths) -> int:
    """What the entries take on disk, as the cache counts it: whole pages."""
    total = 0
    for path in paths:
        try:
            total += -(-os.stat(path).st_size // 4096) * 4096
        except FileNotFoundError:
            pass
    return total
