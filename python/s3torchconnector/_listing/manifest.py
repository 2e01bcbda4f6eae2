"""Manifests: writing one (``write_manifest``) and reading one back, checked whole
(``ObjectsFromManifest``). The format, and the command that writes one, are the public module
``s3torchconnector.manifest``'s; the datasets and the package import from here, so that running that
module as ``python -m s3torchconnector.manifest`` does not find it imported already.
"""

import contextlib
import gc
import gzip
import io
import json
from typing import Any, Iterator, List, Optional

from .._s3bucket_key_data import S3BucketKeyData
from .._s3client import ObjectInfo, S3Client, S3ClientConfig
from .._s3uri import parse_s3_uri
from .._stream_file import StreamFile
from .._user_agent import UserAgent
from ..s3exception import S3Exception, with_message
from ..s3writer import S3Writer
from .key_order import PAGE_SIZE, objects_in_key_order
from .manifest_entries import ManifestEntries, Row, is_simple_block, is_simple_line

HEADER_FIELD = "s3torchconnector_manifest"
VERSION = 1
_DECODER = json.JSONDecoder()


def write_manifest(
    prefix_uri: str,
    manifest_uri: str,
    *,
    region: str,
    endpoint: Optional[str] = None,
    s3client_config: Optional[S3ClientConfig] = None,
    progress=None,
) -> int:
    """Lists every object under ``prefix_uri`` and writes their manifest to ``manifest_uri``;
    returns how many objects it lists. ``progress``, if given, is called with the running count.
    An empty prefix raises ValueError and writes nothing; a failure leaves no manifest behind."""
    bucket, prefix = parse_s3_uri(prefix_uri)
    manifest_bucket, manifest_key = parse_s3_uri(manifest_uri)
    if not manifest_key:
        raise ValueError(f"{manifest_uri!r} names a bucket, not an object: use 's3://bucket/manifest.jsonl'")
    client = S3Client(region, endpoint=endpoint, user_agent=UserAgent(["md/manifest"]), s3client_config=s3client_config)
    s3writer: Optional[S3Writer] = None
    out: Any = None  # the writer, or a GzipFile over it
    count = 0
    try:
        for info in objects_in_key_order(client, bucket, prefix):
            if s3writer is None:  # opened at the first object: an empty prefix writes nothing
                s3writer = client.put_object(manifest_bucket, manifest_key)
                out = gzip.GzipFile(fileobj=s3writer, mode="wb") if manifest_key.endswith(".gz") else s3writer
                _write_line(out, {HEADER_FIELD: VERSION, "bucket": bucket, "prefix": prefix})
            _write_line(out, {"key": info.key, "size": info.size, "etag": info.etag})
            count += 1
            if progress is not None and count % PAGE_SIZE == 0:
                progress(count)
        if progress is not None and count % PAGE_SIZE != 0:
            progress(count)
        if s3writer is None:
            raise ValueError(f"there are no objects under {prefix_uri}: no manifest written")
        if out is not s3writer:
            out.close()  # the gzip trailer; GzipFile leaves the file it writes to open
        s3writer.close()
    except BaseException:
        if s3writer is not None:
            s3writer.abort()
        raise
    return count


def _write_line(out, entry: dict) -> None:
    out.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")


class ObjectsFromManifest:
    """The objects a manifest lists, read with one streamed GET and checked whole before the first
    is returned: a malformed manifest fails before any training starts. Picklable (by URI)."""

    pin_versions = True  # a reader reads the version the manifest recorded, or fails

    def __init__(self, manifest_uri: str):
        self.bucket, self.key = parse_s3_uri(manifest_uri)
        if not self.key:
            raise ValueError(f"{manifest_uri!r} names a bucket, not a manifest object: use 's3://bucket/m.jsonl'")
        self.uri = manifest_uri

    def __call__(self, client: S3Client) -> ManifestEntries:
        return self.read(client)

    def read(self, client: S3Client) -> ManifestEntries:
        """The objects the manifest lists, read through ``client`` with one streamed GET and checked
        whole. A manifest that cannot be read raises its S3Exception, its message naming the manifest;
        one that is not JSON Lines (or not gzip, for ``.gz``), has a malformed line (named by its
        number) or lists no objects raises ValueError."""
        try:
            stream = client._stream_object(self.bucket, self.key)  # through the node cache, when on
            raw: Any = io.BufferedReader(StreamFile(stream), buffer_size=1 << 20)
            if self.key.endswith(".gz"):
                raw = gzip.GzipFile(fileobj=raw, mode="rb")
            text = io.TextIOWrapper(raw, encoding="utf-8")
            with _collector_paused():
                entries = self._parse(_blocks(text))
        except S3Exception as error:
            raise with_message(error, f"cannot read the manifest {self.uri}: {error}") from error
        except (OSError, EOFError, UnicodeDecodeError) as error:  # gzip.BadGzipFile is an OSError
            raise ValueError(
                f"the manifest {self.uri} is not readable JSON Lines{' (gzip)' if self.key.endswith('.gz') else ''}: {error}"
            ) from None
        if not entries:
            raise ValueError(f"the manifest {self.uri} lists no objects")
        return entries

    def _parse(self, blocks: Iterator[str]) -> ManifestEntries:
        bucket: Optional[str] = None  # a header names it, on line 1
        rows: List[Row] = []
        number = 0  # lines before the block
        for block in blocks:
            if number == 0:  # line 1 alone: a header there names the bucket of the lines after it
                first, block = block.split("\n", 1)
                bucket = self._add_line(first, 1, bucket, rows)
                number = 1
            lines = block.split("\n")
            lines.pop()  # after the block's last newline
            if bucket is not None and is_simple_block(block):  # one match checks every line
                rows.extend(lines)
            else:
                for offset, line in enumerate(lines, start=1):
                    bucket = self._add_line(line, number + offset, bucket, rows)
            number += len(lines)
        return ManifestEntries(bucket or "", rows)

    def _add_line(self, line: str, number: int, bucket: Optional[str], rows: List[Row]) -> Optional[str]:
        """Checks one line and adds its object to ``rows``; returns the bucket, which a header names."""
        if bucket is not None and is_simple_line(line):
            rows.append(line)
            return bucket
        if not line.strip():
            return bucket
        try:
            entry = _DECODER.decode(line)
        except ValueError as error:
            raise self._bad_line(number, f"not JSON ({error})") from None
        if not isinstance(entry, dict):
            raise self._bad_line(number, "not a JSON object")
        if HEADER_FIELD in entry:
            if number != 1:
                raise self._bad_line(number, "a header line is only allowed first")
            header_bucket = entry.get("bucket")
            if not isinstance(header_bucket, str) or not header_bucket:
                raise self._bad_line(number, "the header has no bucket")
            return header_bucket
        rows.append(self._entry(entry, bucket, number))
        return bucket

    def _entry(self, entry: dict, bucket: Optional[str], number: int) -> S3BucketKeyData:
        if "uri" in entry:
            try:
                entry_bucket, key = parse_s3_uri(entry["uri"])
            except (TypeError, ValueError) as error:
                raise self._bad_line(number, str(error)) from None
        elif "key" in entry:
            if bucket is None:
                raise self._bad_line(number, 'a "key" needs a first header line naming its bucket; or give a "uri"')
            entry_bucket, key = bucket, entry["key"]
        else:
            raise self._bad_line(number, 'no "uri" or "key"')
        if not isinstance(key, str) or not key:
            raise self._bad_line(number, "the object key is empty: an entry names one object, not a bucket")
        size, etag = entry.get("size"), entry.get("etag", "")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise self._bad_line(number, f"size must be a non-negative integer, got {size!r}")
        if not isinstance(etag, str):
            raise self._bad_line(number, f"etag must be a string, got {etag!r}")
        info = ObjectInfo(key, etag, size) if size is not None else None
        return S3BucketKeyData(entry_bucket, key, info)

    def _bad_line(self, number: int, problem: str) -> ValueError:
        return ValueError(f"the manifest {self.uri}, line {number}: {problem}")

    def explain_changed(self, error: S3Exception, bucket: str, key: str) -> S3Exception:
        """The error of a read refused because the object changed since the manifest recorded it."""
        return with_message(
            error,
            f"s3://{bucket}/{key} changed since the manifest {self.uri} was written (its ETag no longer "
            f"matches): write the manifest again, or restore the object ({error})",
        )


def _blocks(text) -> Iterator[str]:
    """The text of a stream about a megabyte at a time, cut after a newline: whole lines, each ending
    with one. Iterating the stream line by line would cost a Python call per line in GzipFile."""
    partial = ""
    while True:
        block = text.read(1 << 20)
        if not block:
            break
        block = partial + block
        cut = block.rfind("\n") + 1
        partial = block[cut:]
        if cut:
            yield block[:cut]
    if partial:
        yield partial + "\n"


@contextlib.contextmanager
def _collector_paused():
    """Building millions of small entries triggers the cyclic garbage collector again and again over
    a heap that only grows (nearly half the parse time of 100,000 entries): pause it meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
