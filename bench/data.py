"""Generated objects under bench/data/<bucket>/..., and ListObjectsV2 pages for nginx."""

import gzip
import hashlib
import io
import json
import os
import tarfile
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
                mark = hashlib.md5(f"{path.name}:{i}:{off}".encode()).digest()[: len(chunk) - off]
                chunk[off : off + len(mark)] = mark  # never longer than the chunk (W0's 1-byte object)
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
        name = key[len(prefix) :]
        if name in existing and (directory / name).stat().st_size == size:
            continue
        start = (i * 97) % 4096
        with open(directory / name, "wb") as f:
            f.write(pool[start : start + size])
    return keys


def write_listing(lists_root: Path, bucket: str, prefix: str, entries: List[Tuple[str, int, str]]) -> None:
    """ListObjectsV2 pages for (bucket, prefix), continuation tokens are page numbers, and pages.txt
    (each page's first and last key) for requests with start-after.

    nginx's Lua maps GET /bucket?list-type=2&prefix=P&continuation-token=N to
    <lists_root>/<bucket>/<md5(P)>/<N>.xml. ``entries`` are (key, size, ETag as nginx sends it,
    quoted): as on S3 a listing's ETag is the GET's, which the node cache relies on (it serves an
    entry to a read whose listing names the entry's ETag, and downloads again otherwise).
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
        for key, size, etag in chunk:
            quoted = etag.replace('"', "&quot;")
            parts.append(
                f"<Contents><Key>{key}</Key><LastModified>{_LAST_MODIFIED}</LastModified>"
                f"<ETag>{quoted}</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            )
        parts.append("</ListBucketResult>")
        (directory / f"{page}.xml").write_text("".join(parts))
    # For ListObjectsV2 with start-after (servers.py): each page's first and last key.
    bounds = [(entries[page * PAGE][0], entries[min(len(entries), (page + 1) * PAGE) - 1][0]) for page in range(pages)]
    (directory / "pages.txt").write_text("".join(f"{first}\t{last}\n" for first, last in bounds) if entries else "")


def nginx_etag(path: Path) -> str:
    """The ETag nginx sends for a static file: "<mtime hex>-<size hex>", quoted."""
    st = path.stat()
    return f'"{int(st.st_mtime):x}-{st.st_size:x}"'


def served_entries(root: Path, keys: List[str]) -> List[Tuple[str, int, str]]:
    """(key, size, ETag) of objects nginx serves from their own files under <root>/<bucket>/: a listing's entries."""
    return [(key, (root / BUCKET / key).stat().st_size, nginx_etag(root / BUCKET / key)) for key in keys]


def write_shared_objects(
    data_root: Path, lists_root: Path, bucket: str, prefix: str, count: int, body_size: int, manifest_key: str
) -> str:
    """``count`` keys under s3://bucket/<prefix> that nginx serves from one body file (servers.py:
    a prefix ``shared-*/`` maps to <data_root>/_shared/<bucket>/<prefix>.bin), their listing pages,
    and their manifest (JSON Lines, gzip: s3torchconnector.manifest's format, written here rather
    than by write_manifest because the read endpoints take no PUT). Every key's ETag is the body's
    as nginx sends it, so reads pinned to the manifest's ETags succeed. Returns that ETag."""
    body = data_root / "_shared" / bucket / (prefix.rstrip("/") + ".bin")
    if not (body.exists() and body.stat().st_size == body_size):
        body.parent.mkdir(parents=True, exist_ok=True)
        body.write_bytes(os.urandom(body_size))
    etag = nginx_etag(body)
    keys = [f"{prefix}{i:07d}.bin" for i in range(count)]
    write_listing(lists_root, bucket, prefix, [(k, body_size, etag) for k in keys])
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(
            json.dumps(
                {"s3torchconnector_manifest": 1, "bucket": bucket, "prefix": prefix}, separators=(",", ":")
            ).encode()
            + b"\n"
        )
        gz.write(
            b"".join(
                json.dumps({"key": k, "size": body_size, "etag": etag}, separators=(",", ":")).encode() + b"\n"
                for k in keys
            )
        )
    manifest = data_root / bucket / manifest_key
    manifest.parent.mkdir(parents=True, exist_ok=True)
    if not (manifest.exists() and manifest.read_bytes() == raw.getvalue()):
        manifest.write_bytes(raw.getvalue())
    return etag


def write_index_manifest(
    data_root: Path, bucket: str, prefix: str, count: int, body_size: int, manifest_key: str
) -> bool:
    """W10: a manifest (JSON Lines, write_manifest's shape) of ``count`` keys under s3://bucket/<prefix>,
    a ``shared-*/`` prefix that nginx serves from one body, so that the first entry reads. Written
    in pieces (10 million lines are about 850 MB) and only when missing; True when written."""
    body = data_root / "_shared" / bucket / (prefix.rstrip("/") + ".bin")
    if not (body.exists() and body.stat().st_size == body_size):
        body.parent.mkdir(parents=True, exist_ok=True)
        body.write_bytes(os.urandom(body_size))
    etag = json.dumps(nginx_etag(body))[1:-1].encode()  # the ETag as it stands inside a JSON string
    manifest = data_root / bucket / manifest_key
    stamp = manifest.with_name(manifest.name + ".written")
    if manifest.exists() and stamp.exists() and stamp.read_text() == f"{count} {etag.decode()}":
        return False
    manifest.parent.mkdir(parents=True, exist_ok=True)
    header = {"s3torchconnector_manifest": 1, "bucket": bucket, "prefix": prefix}
    with open(manifest, "wb") as out:
        out.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
        line = b'{"key":"%s%%08d.bin","size":%d,"etag":"%s"}\n' % (prefix.encode(), body_size, etag)
        for start in range(0, count, 1_000_000):
            out.write(b"".join(line % i for i in range(start, min(count, start + 1_000_000))))
    stamp.write_text(f"{count} {etag.decode()}")
    return True


def write_tar_shards(root: Path, shard_keys: List[str], per_shard: int, samples: List[Path]) -> List[Tuple[str, int]]:
    """Tar shards (WebDataset layout: one member ``<7-digit index>.bin`` per sample) under
    s3://bench/, sample i holding the bytes of ``samples[i % len(samples)]``; written with
    Python's tarfile. Returns (key, size) of each shard."""
    sample_size = samples[0].stat().st_size
    member = tarfile.BLOCKSIZE + -(-sample_size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    # tarfile ends with two zero blocks and pads the archive to a whole record
    expected = -(-(per_shard * member + 2 * tarfile.BLOCKSIZE) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE
    out = []
    for s, key in enumerate(shard_keys):
        path = root / BUCKET / key
        if not (path.exists() and path.stat().st_size == expected):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
                for j in range(per_shard):
                    i = s * per_shard + j
                    data = samples[i % len(samples)].read_bytes()
                    info = tarfile.TarInfo(f"{i:07d}.bin")
                    info.size, info.mtime, info.mode = len(data), 1735689600, 0o644
                    tar.addfile(info, io.BytesIO(data))
            tmp.rename(path)
        out.append((key, path.stat().st_size))
    return out


def write_tar_indexes(root: Path, shard_keys: List[str], per_shard: int, sample_size: int) -> List[str]:
    """Beside each shard of ``write_tar_shards``, the index S3MapDataset(shard_format="tar") reads (its
    format is s3torchconnector._tar.index's, written here from the layout as another tool would):
    sample i of a shard spans one header block and its data padded to whole blocks. Returns the keys."""
    member = tarfile.BLOCKSIZE + -(-sample_size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    keys = []
    for key in shard_keys:
        shard = root / BUCKET / key
        index = {
            "format": "s3torchconnector.tar-index",
            "version": 1,
            "shard": {"etag": nginx_etag(shard), "size": shard.stat().st_size},
            "samples": [[j * member, (j + 1) * member] for j in range(per_shard)],
        }
        (root / BUCKET / f"{key}.index.json").write_text(json.dumps(index, separators=(",", ":")))
        keys.append(f"{key}.index.json")
    return keys


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
