"""Listing manifests: a prefix listed once into an S3 object, read back with one GET.

Format (JSON Lines; gzip when the name ends in ``.gz``), so that other tools can write it too:

- an optional first line ``{"s3torchconnector_manifest": 1, "bucket": "data", "prefix": "train/"}``;
- then one object per line: ``{"key": "train/0001.jpg", "size": 1234, "etag": "\\"9b2c...\\""}``,
  where ``key`` is in the header's bucket, or ``{"uri": "s3://bucket/key", ...}`` in any bucket.
  ``size`` (bytes) and ``etag`` are optional but recommended: the size saves a HEAD request when a
  reader needs it, and the ETag pins the version read, so an object changed since the manifest was
  written fails its read (S3Exception ``PreconditionFailed``) instead of giving other bytes.

``write_manifest`` (or ``python -m s3torchconnector.manifest s3://bucket/prefix s3://bucket/m.jsonl``)
writes one; ``S3MapDataset.from_manifest`` and ``S3IterableDataset.from_manifest`` read one.
"""

import argparse
import sys
from typing import List, Optional

from ._listing.manifest import HEADER_FIELD, VERSION, ObjectsFromManifest, write_manifest
from ._progress import TerminalProgress

__all__ = ["write_manifest", "ObjectsFromManifest", "HEADER_FIELD", "VERSION", "main"]


def main(argv: Optional[List[str]] = None, prog: str = "python -m s3torchconnector.manifest") -> int:
    """The ``manifest`` command (``s3torchconnector manifest`` or ``python -m s3torchconnector.manifest``):
    parses ``argv`` (``sys.argv[1:]`` when None), writes the manifest with :func:`write_manifest`, prints
    how many objects it lists and returns 0, the exit status. ``prog`` is the command's name in its usage
    and messages. Bad arguments exit with status 2 and argparse's message; a failure of the listing or the
    upload raises its exception."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="List an S3 prefix once and write its manifest (JSON Lines; gzip when the name ends in .gz).",
    )
    parser.add_argument("prefix_uri", help="s3://bucket/prefix to list")
    parser.add_argument("manifest_uri", help="s3://bucket/path/manifest.jsonl[.gz] to write")
    parser.add_argument("--region", default="us-east-1", help="AWS Region of the buckets (default us-east-1)")
    parser.add_argument(
        "--endpoint",
        default=None,
        help="S3 endpoint URL, for S3-compatible servers (default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS S3)",
    )
    args = parser.parse_args(argv)
    progress = TerminalProgress("listed {:,} objects") if sys.stderr.isatty() else None
    count = write_manifest(
        args.prefix_uri, args.manifest_uri, region=args.region, endpoint=args.endpoint, progress=progress
    )
    if progress is not None:
        progress.done()
    print(f"wrote {args.manifest_uri}: {count:,} objects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
