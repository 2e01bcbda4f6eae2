"""Generated objects under bench/data/<bucket>/..., and ListObjectsV2 pages for nginx."""

import hashlib
import os
from pathlib import Path
from typing import Dict, List, Tuple

MIB = 1024 * 1024
GIB = 1024 * MIB
BUCKET = "bench"
PAGE = 1000  # keys per ListObjectsV2 page, as S3's default max-keys
_LAST_MODIFIED = "2025-01-01T00:00:00.000Z"


def write_random_file(path: Path, size: int) -> bool:
    """A file of ``size`` pseudo-random bytes (no two MiB alike); False when it already exists."""
    if path.exists() and path.stat().st_size == size:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    block = os.urandom(16 * MIB)
    with open(tmp, "wb") as f:
        written = 0
        i = 0
        while written < size:
            chunk = bytearray(block[: min(len(block), size - written)])
            # Make every MiB distinct so nothing in the path can deduplicate.
            for off in range(0, len(chunk), MIB):
                chunk[off : off + 16] = hashlib.md5(f"{path.name}:{i}:{off}".encode()).digest()
            f.write(chunk)
            written += len(chunk)
            i += 1
    tmp.rename(path)
    return True


def write_small_objects(root: Path, prefix: str, count: int, size: int) -> List[str]:
    """``count`` objects of ``size`` bytes under s3://bench/<prefix>; returns their keys."""
    keys = [f"{prefix}{i:06d}.bin" for i in range(count)]
    directory = root / BUCKET / prefix
    directory.mkdir(parents=True, exist_ok=True)
    existing = {p.name for p in directory.iterdir()}
    pool = os.urandom(size + 4096)
    for i, key in enumerate(keys):
        name = key[len(prefix):]
        if name in existing and (directory / name).stat().st_size == size:
            continue
        start = (i * 97) % 4096
        with open(directory / name, "wb") as f:
            f.write(pool[start : start + size])
    return keys


def write_listing(lists_root: Path, bucket: str, prefix: str, entries: List[Tuple[str, int]]) -> None:
    """ListObjectsV2 pages for (bucket, prefix), continuation tokens are page numbers.

    nginx's Lua maps GET /bucket?list-type=2&prefix=P&continuation-token=N to
    <lists_root>/<bucket>/<md5(P)>/<N>.xml.
    """
    directory = lists_root / bucket / hashlib.md5(prefix.encode()).hexdigest()
    directory.mkdir(parents=True, exist_ok=True)
    entries = sorted(entries)
    pages = max(1, (len(entries) + PAGE - 1) // PAGE)
    for page in range(pages):
        chunk = entries[page * PAGE : (page + 1) * PAGE]
        truncated = page + 1 < pages
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
            f"<Name>{bucket}</Name><Prefix>{prefix}</Prefix><KeyCount>{len(chunk)}</KeyCount>",
            f"<MaxKeys>{PAGE}</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
        ]
        if page:
            parts.append(f"<ContinuationToken>{page}</ContinuationToken>")
        if truncated:
            parts.append(f"<NextContinuationToken>{page + 1}</NextContinuationToken>")
        for key, size in chunk:
            etag = hashlib.md5(key.encode()).hexdigest()
            parts.append(
                f"<Contents><Key>{key}</Key><LastModified>{_LAST_MODIFIED}</LastModified>"
                f"<ETag>&quot;{etag}&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            )
        parts.append("</ListBucketResult>")
        (directory / f"{page}.xml").write_text("".join(parts))


def write_checkpoint(path: Path, size: int) -> bool:
    """torch.save of a state dict of about ``size`` bytes (float32 tensors of 64 MiB at most)."""
    if path.exists() and path.stat().st_size >= size:
        return False
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(make_state_dict(size), tmp)
    tmp.rename(path)
    return True


def make_state_dict(size: int) -> Dict[str, "object"]:
    import torch

    g = torch.Generator().manual_seed(0)
    state = {}
    left = size
    i = 0
    while left > 0:
        n = min(left, 64 * MIB) // 4
        state[f"layer{i}.weight"] = torch.rand(n, generator=g)
        left -= n * 4
        i += 1
    return state


def disk_usage(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                total += os.stat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
