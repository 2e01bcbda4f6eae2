"""Manifests: writing one (``write_manifest``) and reading one back, checked whole
(``ObjectsFromManifest``). The format, and the command that writes one, are the public module
``s3torchconnector.manifest``'s; the datasets and the package import from here, so that running that
module as ``python -m s3torchconnector.manifest`` does not find it imported already.
"""

import gzip
import io
import json
import uuid
from typing import Any, Iterator, Optional

from .. import _native
from .._s3client import S3Client, S3ClientConfig
from .._s3uri import parse_s3_uri
from .._stream_file import StreamFile
from .._user_agent import UserAgent
from ..s3exception import S3Exception, with_message
from ..s3writer import S3Writer
from .index_files import index_writer, shared_index
from .indexed_objects import IndexedObjects
from .key_order import PAGE_SIZE, objects_in_key_order

HEADER_FIELD = "s3torchconnector_manifest"
VERSION = 1
_DECODER = json.JSONDecoder()
_GZIP_RATIO = 10  # a gzip manifest's text is about this many times its size
_CHUNK = 1 << 20


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
        for info in objects_in_key_order(client, bucket, prefix, parallel=True):
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
    is returned: a malformed manifest fails before any training starts. They are kept in an index
    file that every process of the node reading this version of the manifest shares (index_files).
    Picklable (by URI)."""

    pin_versions = True  # a reader reads the version the manifest recorded, or fails

    def __init__(self, manifest_uri: str):
        self.bucket, self.key = parse_s3_uri(manifest_uri)
        if not self.key:
            raise ValueError(f"{manifest_uri!r} names a bucket, not a manifest object: use 's3://bucket/m.jsonl'")
        self.uri = manifest_uri

    def __call__(self, client: S3Client) -> IndexedObjects:
        return self.read(client)

    def read(self, client: S3Client) -> IndexedObjects:
        """The objects the manifest lists, from the node's index of this version of the manifest,
        built (one streamed GET through ``client``, checked whole) when no process built it yet. A
        manifest that cannot be read raises its S3Exception, its message naming the manifest; one
        that is not JSON Lines (or not gzip, for ``.gz``), has a malformed line (named by its number)
        or lists no objects raises ValueError."""
        try:
            head = client.head_object(self.bucket, self.key)
        except S3Exception as error:
            raise with_message(error, f"cannot read the manifest {self.uri}: {error}") from error
        # Without an ETag nothing tells two versions apart: such an index is this process's (and its workers').
        version = head.etag or uuid.uuid4().hex
        endpoint = client.endpoint or ""
        identity = "\0".join(
            ("manifest", str(_native.OBJECT_INDEX_VERSION), client.region, endpoint, self.bucket, self.key, version)
        )
        gzipped = self.key.endswith(".gz")
        expected = head.size * (_GZIP_RATIO if gzipped else 1)
        return shared_index(identity, expected, lambda path: self._build(client, head.etag or "", path))

    def _build(self, client: S3Client, etag: str, path: str) -> None:
        """Writes the index of the manifest's version ``etag`` at ``path``."""
        with index_writer(path) as writer:
            try:
                stream = client._stream_object(self.bucket, self.key, etag)  # through the node cache, when on
                raw: Any = StreamFile(stream)
                if self.key.endswith(".gz"):
                    raw = gzip.GzipFile(fileobj=io.BufferedReader(raw, buffer_size=1 << 20), mode="rb")
                self._add_lines(_chunks(raw), writer)
            except S3Exception as error:
                raise with_message(error, f"cannot read the manifest {self.uri}: {error}") from error
            except (OSError, EOFError, UnicodeDecodeError) as error:  # gzip.BadGzipFile is an OSError
                if isinstance(error, FileNotFoundError) or getattr(error, "filename", None) == path:
                    raise  # the index file's own, not the manifest's
                raise ValueError(
                    f"the manifest {self.uri} is not readable JSON Lines{' (gzip)' if self.key.endswith('.gz') else ''}: {error}"
                ) from None
            if writer.count == 0:
                raise ValueError(f"the manifest {self.uri} lists no objects")

    def _add_lines(self, chunks: Iterator[bytes], writer) -> None:
        """Adds the manifest's objects to ``writer`` in order. Lines in write_manifest's shape are
        read natively; any other line (and line 1, which may be a header naming the bucket) is parsed
        here the exact way."""
        bucket: Optional[str] = None  # a header names it, on line 1
        number = 0  # lines read
        carry = b""  # a line cut by the chunk's end
        for chunk in chunks:
            data = carry + chunk if carry else chunk
            at = 0
            while True:
                if number > 0:
                    at, lines = writer.add_simple_lines(data, at, bucket or "")
                    number += lines
                end = data.find(b"\n", at)
                if end < 0:
                    break
                number += 1
                bucket = self._add_line(data[at:end].decode("utf-8"), number, bucket, writer)
                at = end + 1
            carry = data[at:]
        if carry:  # the last line, with no newline after it
            self._add_line(carry.decode("utf-8"), number + 1, bucket, writer)

    def _add_line(self, line: str, number: int, bucket: Optional[str], writer) -> Optional[str]:
        """Checks one line and adds its object to ``writer``; returns the bucket, which a header names."""
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
        entry_bucket, key, size, etag = self._entry(entry, bucket, number)
        writer.add(entry_bucket, key, -1 if size is None else size, etag)
        return bucket

    def _entry(self, entry: dict, bucket: Optional[str], number: int):
        """(bucket, key, size or None, ETag) of one entry, checked."""
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
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 1 << 62):
            raise self._bad_line(number, f"size must be a non-negative integer below 2**62, got {size!r}")
        if not isinstance(etag, str):
            raise self._bad_line(number, f"etag must be a string, got {etag!r}")
        # Keys and ETags with lone surrogates ("\ud800") cannot be UTF-8, nor an S3 key.
        for field, text in (("key", key), ("etag", etag)):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise self._bad_line(number, f"the {field} is not valid Unicode") from None
        return entry_bucket, key, size, etag

    def _bad_line(self, number: int, problem: str) -> ValueError:
        return ValueError(f"the manifest {self.uri}, line {number}: {problem}")

    def explain_changed(self, error: S3Exception, bucket: str, key: str) -> S3Exception:
        """The error of a read refused because the object changed since the manifest recorded it."""
        return with_message(
            error,
            f"s3://{bucket}/{key} changed since the manifest {self.uri} was written (its ETag no longer "
            f"matches): write the manifest again, or restore the object ({error})",
        )


def _chunks(raw) -> Iterator[bytes]:
    """The manifest's bytes, 1 MiB at a time (cut anywhere: lines are joined again by the reader)."""
    while True:
        chunk = raw.read(_CHUNK)
        if not chunk:
            return
        yield chunk
