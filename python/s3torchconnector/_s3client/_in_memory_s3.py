"""InMemoryS3: one S3 bucket held in memory, behind the same interface as ``_native.NativeClient``.

MockS3Client builds it in place of the native client, so everything above the native layer (readers,
writer, listing, datasets, checkpoints) runs unchanged on it. It answers the way S3 and the native
client do, so that tests on it mean something:

- objects have S3's single-part ETag (the quoted MD5 of their bytes), a Last-Modified time and a
  storage class; GET/HEAD omit the class for STANDARD objects, as S3's headers do;
- errors are the native client's ``S3Exception``, with its code, status, bucket, key, operation and
  message (``NoSuchKey``, ``NoSuchBucket``, ``PreconditionFailed``...); a GET's error surfaces at
  its first read, as a native download's does;
- an upload becomes an object only when it is closed; ``abort()`` leaves nothing;
- listings are in key order, with prefix, delimiter, ``max_keys`` pages and continuation tokens.

Not modelled: multipart ETags ("...-N"), archived objects being unreadable until restored, request
ids, throttling and transient failures, and the part sizes a real download is delivered in.
"""

import base64
import binascii
import bisect
import copy
import email.utils
import hashlib
import threading
import time
import weakref
from functools import partial
from typing import Callable, Dict, List, NamedTuple, Optional

from .. import _metrics, _native
from ..s3exception import S3Exception, error_from_facts

# What S3 accepts as x-amz-storage-class; anything else is refused with InvalidStorageClass.
_STORAGE_CLASSES = frozenset(
    {
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER",
        "DEEP_ARCHIVE",
        "OUTPOSTS",
        "GLACIER_IR",
        "SNOW",
        "EXPRESS_ONEZONE",
    }
)


class ObjectInfo(NamedTuple):
    """Mirrors ``_native.ObjectInfo``."""

    key: str
    etag: str
    size: int
    last_modified: str
    storage_class: str
    restore: str = ""  # the x-amz-restore header; nothing here is archived


class ListPage(NamedTuple):
    """Mirrors ``_native.ListPage``."""

    objects: List[ObjectInfo]
    common_prefixes: List[str]
    next_continuation_token: str


class _Object(NamedTuple):
    data: bytes
    etag: str
    last_modified: int  # seconds since the epoch: S3 keeps whole seconds
    storage_class: str


def _s3_exception(code: str, status: int, operation: str, bucket: str, key: str, server_message: str = ""):
    """The exception the native client raises for S3's answer, by the same rules (s3exception.py)."""
    return error_from_facts(
        code=code, status=status, operation=operation, bucket=bucket, key=key, server_message=server_message
    )


def _new_object(data: bytes, storage_class: str) -> _Object:
    etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
    return _Object(data, etag, int(time.time()), storage_class)


def _iso_time(seconds: int) -> str:
    """As ListObjectsV2 sends it: 2026-11-23T23:14:27.000Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def _http_time(seconds: int) -> str:
    """As the Last-Modified header sends it: Sun, 23 Nov 2026 23:14:27 GMT."""
    return email.utils.formatdate(seconds, usegmt=True)


def _header_info(key: str, stored: _Object) -> ObjectInfo:
    # S3 sends x-amz-storage-class only for classes other than STANDARD.
    storage_class = "" if stored.storage_class == "STANDARD" else stored.storage_class
    return ObjectInfo(key, stored.etag, len(stored.data), _http_time(stored.last_modified), storage_class)


class InMemoryS3:
    """One bucket named ``bucket``; requests for any other bucket fail with NoSuchBucket.

    Thread-safe. Pickling copies the objects: an unpickled store (e.g. in a spawned DataLoader
    worker) starts with the objects the original held, and is independent of it from then on.
    """

    def __init__(self, bucket: str, part_size: int = 8 * 1024 * 1024):
        self.bucket = bucket
        self._part_size = part_size
        self._objects: Dict[str, _Object] = {}
        self._lock = threading.Lock()
        # ObjectVersion.etag cannot be set from Python, so the ETag each reader pinned is kept here.
        self._pins: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        # Requests and bytes per operation, in the native client's metrics layout (no latencies here).
        self._counts: Dict[str, Dict[str, int]] = {}

    def __getstate__(self):
        return {"bucket": self.bucket, "part_size": self._part_size, "objects": self._objects}

    def __setstate__(self, state):
        self.__init__(state["bucket"], state["part_size"])
        self._objects = state["objects"]

    # ---- the original mock's additions

    def add_object(self, key: str, data) -> None:
        """Stores ``data`` (any bytes-like object, copied) as a STANDARD object."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"key must be a non-empty string, got {key!r}")
        stored = _new_object(bytes(data), "STANDARD")
        with self._lock:
            self._objects[key] = stored

    def remove_object(self, key: str) -> None:
        """Removes the object if it exists."""
        with self._lock:
            self._objects.pop(key, None)

    # ---- the native client's interface

    def metrics(self) -> dict:
        with self._lock:
            operations = {name: dict(counts, first_byte_us={}, duration_us={}) for name, counts in self._counts.items()}
        return {"operations": operations, "peak_connections": 0}

    def _count(self, operation: str, payload_bytes: int = 0) -> None:
        """One request: counted whether it succeeds or not (failures, retries and latencies are the
        network's, and are left at zero here)."""
        with self._lock:
            counts = self._counts.setdefault(operation, dict.fromkeys(_metrics.COUNTERS, 0))
            counts["requests"] += 1
            counts["bytes"] += payload_bytes

    def get_object(
        self,
        bucket: str,
        key: str,
        start: Optional[int] = None,
        end: Optional[int] = None,
        whole: bool = False,
        version: Optional["_native.ObjectVersion"] = None,
    ) -> "GetStream":
        if start is not None and end is not None and end < start:
            raise ValueError(f"range end {end} is before its start {start}")
        ranged = start is not None or end is not None
        begin = start or 0
        if end is not None and end == begin:
            return GetStream(bucket, key, begin, ObjectInfo(key, "", 0, "", ""))  # the native client sends no request
        try:
            stored = self._find("GetObject", bucket, key)
            self._check_version(version, stored, bucket, key)
        except S3Exception as error:
            self._count("GetObject")
            # Each read raises a fresh copy (with its own traceback), as each native read does.
            return GetStream(bucket, key, begin, None, failure=partial(copy.copy, error))
        if ranged and begin >= len(stored.data):
            # S3 answers 416; the native stream makes that an empty read, as a file would.
            return GetStream(bucket, key, begin, ObjectInfo(key, "", 0, "", ""))
        body = memoryview(stored.data)[begin:end]
        self._count("GetObject", len(body))
        chunk_size = len(body) if whole else self._part_size
        return GetStream(bucket, key, begin, _header_info(key, stored), body, chunk_size)

    def put_object(self, bucket: str, key: str, storage_class: str = "") -> "PutStream":
        return PutStream(self, bucket, key, storage_class)

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        self._count("HeadObject")
        return _header_info(key, self._find("HeadObject", bucket, key))

    def delete_object(self, bucket: str, key: str) -> None:
        self._count("DeleteObject")
        self._check_bucket("DeleteObject", bucket, key)
        with self._lock:
            self._objects.pop(key, None)  # deleting a missing key succeeds, as on S3

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        self._count("CopyObject")
        self._check_bucket("CopyObject", dst_bucket, dst_key)
        self._check_bucket("CopyObject", src_bucket, src_key)
        with self._lock:
            source = self._objects.get(src_key)
            if source is None:
                raise _s3_exception(
                    "NoSuchKey",
                    404,
                    "CopyObject",
                    src_bucket,
                    src_key,
                )
            # A copy is a new object: same bytes and ETag, a new time, and STANDARD unless asked otherwise.
            self._objects[dst_key] = source._replace(last_modified=int(time.time()), storage_class="STANDARD")

    def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str = "", max_keys: int = 1000, continuation_token: str = ""
    ) -> ListPage:
        self._count("ListObjectsV2")
        self._check_bucket("ListObjectsV2", bucket, "")
        after = self._decode_token(bucket, continuation_token)
        with self._lock:
            objects = dict(self._objects)
        keys = sorted(k for k in objects if k.startswith(prefix))
        page = ListPage([], [], "")
        last_name = None
        # Entries (objects and common prefixes) in key order; each common prefix counts once.
        for key in keys[bisect.bisect_right(keys, after) if after else 0 :]:
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            name = key if cut < 0 else key[: cut + len(delimiter)]
            if name == last_name or (after and name <= after):
                continue  # a common prefix already given, on this page or an earlier one
            if len(page.objects) + len(page.common_prefixes) >= max_keys:
                return page._replace(next_continuation_token=_encode_token(last_name) if last_name else "")
            if cut < 0:
                stored = objects[key]
                page.objects.append(
                    ObjectInfo(
                        key, stored.etag, len(stored.data), _iso_time(stored.last_modified), stored.storage_class
                    )
                )
            else:
                page.common_prefixes.append(name)
            last_name = name
        return page

    # ---- helpers

    def _check_bucket(self, operation: str, bucket: str, key: str) -> None:
        if bucket != self.bucket:
            raise _s3_exception("NoSuchBucket", 404, operation, bucket, key)

    def _find(self, operation: str, bucket: str, key: str) -> _Object:
        self._check_bucket(operation, bucket, key)
        with self._lock:
            stored = self._objects.get(key)
        if stored is None:
            raise _s3_exception("NoSuchKey", 404, operation, bucket, key)
        return stored

    def _check_version(self, version, stored: _Object, bucket: str, key: str) -> None:
        """A reader's first response pins its ETag; later requests of another ETag fail (If-Match)."""
        if version is None:
            return
        with self._lock:
            pinned = version.etag or self._pins.get(version)
            if not pinned:
                self._pins[version] = stored.etag
                return
        if pinned.strip('"') != stored.etag.strip('"'):  # "abc" and abc are one ETag, as on S3
            raise _s3_exception(
                "PreconditionFailed",
                412,
                "GetObject",
                bucket,
                key,
            )

    def _store(self, bucket: str, key: str, data: bytes, storage_class: str) -> None:
        self._count("PutObject", len(data))
        self._check_bucket("PutObject", bucket, key)
        storage_class = storage_class or "STANDARD"
        if storage_class not in _STORAGE_CLASSES:
            raise _s3_exception(
                "InvalidStorageClass",
                400,
                "PutObject",
                bucket,
                key,
                "The storage class you specified is not valid",
            )
        stored = _new_object(data, storage_class)
        with self._lock:
            self._objects[key] = stored

    def _decode_token(self, bucket: str, token: str) -> str:
        if not token:
            return ""
        try:
            return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
        except (ValueError, UnicodeError, binascii.Error):
            raise _s3_exception(
                "InvalidArgument",
                400,
                "ListObjectsV2",
                bucket,
                "",
                "The continuation token provided is incorrect",
            ) from None


def _encode_token(name: str) -> str:
    # Opaque to callers, like S3's: here, the last entry of the page.
    return base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii")


_NO_BYTES = memoryview(b"")


class GetStream:
    """Mirrors ``_native.GetObjectStream`` over bytes already in memory."""

    def __init__(
        self,
        bucket: str,
        key: str,
        start: int,
        info: Optional[ObjectInfo],
        body: memoryview = _NO_BYTES,
        chunk_size: int = 0,
        failure: Optional[Callable[[], Exception]] = None,
    ):
        self.bucket = bucket
        self.key = key
        self._start = start  # object offset of body[0]
        self._info = info
        self._body = body
        self._position = 0
        self._chunk_size = chunk_size
        self._failure = failure  # makes the request's error, raised by every read, as the native does

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure()

    def _take(self, size: int) -> memoryview:
        piece = self._body[self._position : self._position + size]
        self._position += len(piece)
        return piece

    def info(self) -> ObjectInfo:
        self._check()
        assert self._info is not None  # only a failed request has none, and _check raised its error
        return self._info

    def read_all_bytes(self) -> bytes:
        self._check()
        return self._take(len(self._body)).tobytes()

    def land_bytes(self) -> bytes:
        return self.read_all_bytes()  # here every byte has landed at once

    def wait_landed(self, start: int, end: int) -> None:
        self._check()

    def has_landed(self, start: int, end: int) -> bool:
        return True

    def next_chunk(self) -> Optional[bytearray]:
        self._check()
        piece = self._take(self._chunk_size or len(self._body))
        return bytearray(piece) if len(piece) else None

    def readinto(self, buffer) -> int:
        target = _writable_bytes(buffer)
        if len(target) == 0:
            return 0
        self._check()
        piece = self._take(len(target))
        target[: len(piece)] = piece
        return len(piece)

    def close(self) -> None:
        self._body = memoryview(b"")
        self._position = 0

    # The original's stream interface, as the native stream has it too.
    def tell(self) -> int:
        return self._start + self._position

    def __iter__(self) -> "GetStream":
        return self

    def __next__(self) -> bytes:
        chunk = self.next_chunk()
        if chunk is None:
            raise StopIteration
        return bytes(chunk)


class PutStream:
    """Mirrors ``_native.PutObjectStream``: bytes are kept until ``close()`` stores the object."""

    def __init__(self, store: InMemoryS3, bucket: str, key: str, storage_class: str):
        self._store = store
        self.bucket = bucket
        self.key = key
        self._storage_class = storage_class
        self._parts: List[bytes] = []
        self._bytes_written = 0
        self._ended = False

    @property
    def bytes_written(self) -> int:
        return self._bytes_written

    def write(self, data) -> int:
        view = memoryview(data)  # TypeError for str and other non-buffers, as the native write
        if not view.c_contiguous:
            raise BufferError("the buffer is not contiguous")
        if self._ended:
            raise RuntimeError("write to an upload that was closed or aborted")
        self._parts.append(view.tobytes())  # a copy: the caller may reuse its buffer once this returns
        self._bytes_written += view.nbytes
        return view.nbytes

    def close(self) -> None:
        if self._ended:
            return
        self._ended = True
        data, self._parts = b"".join(self._parts), []
        self._store._store(self.bucket, self.key, data, self._storage_class)

    def abort(self) -> None:
        self._ended = True
        self._parts = []


def _writable_bytes(buffer) -> memoryview:
    """The buffer as writable bytes, refused as the native readinto refuses it."""
    view = memoryview(buffer)
    if view.readonly:
        raise BufferError("Object is not writable.")
    if not view.c_contiguous:
        raise BufferError("the buffer is not contiguous")
    return view.cast("B") if view.ndim != 1 or view.format != "B" else view
