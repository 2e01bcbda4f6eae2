"""InMemoryS3: one S3 bucket held in memory, behind the same interface as ``_native.NativeClient``.

MockS3Client builds it in place of the native client, so everything above the native layer (readers,
writer, listing, datasets, checkpoints) runs unchanged on it. It answers the way S3 and the native
client do, so that tests on it mean something (tests/contract runs one suite on both):

- objects have S3's ETag: the quoted MD5 of their bytes, or, for an upload larger than one part
  (``max(part_size, 5 MiB)``, as the native writer splits it), the multipart ETag "<md5 of the parts'
  MD5s>-<parts>"; a Last-Modified time and a storage class; GET/HEAD omit the class for STANDARD
  objects, as S3's headers do;
- errors are the native client's ``S3Exception``, with its code, status, bucket, key, operation and
  message (``NoSuchKey``, ``NoSuchBucket``, ``PreconditionFailed``...); a GET's error surfaces at
  its first read, as a native download's does. A HEAD has no body, so a missing bucket is reported as
  the native client reports it: NoSuchKey. A copy HEADs its source first (as the CRT does): a missing
  source, in any bucket, is NoSuchKey of the source; then the destination's bucket is checked;
- GLACIER and DEEP_ARCHIVE objects cannot be read (InvalidObjectState) or copied
  (ObjectNotInActiveTierError): nothing here restores them;
- arguments are checked as the native binding checks them: TypeError for a bucket, key, prefix... that
  is not text (str, or UTF-8 bytes), a byte offset that is not a non-negative integer, a version that is
  not an ObjectVersion;
- an upload becomes an object only when it is closed; ``abort()`` leaves nothing;
- listings are in key order, with prefix, delimiter, ``max_keys`` pages and continuation tokens;
- metrics count requests (a copy is a HEAD and a CopyObject), the bytes of objects and failed requests.

Not modelled: request ids, the ETag of a copy of 1 GiB or more (the CRT copies those in parts), the
bytes of listing responses in metrics, ``ObjectVersion.etag`` being filled in by the first response
(it cannot be set from Python: the pinned ETag is kept here), throttling and transient failures, and
the part sizes a real download is delivered in.
"""

import base64
import binascii
import bisect
import copy
import email.utils
import hashlib
import operator
import threading
import time
import weakref
from functools import partial
from typing import Callable, Dict, List, NamedTuple, Optional, TypeVar

from .. import _metrics, _native
from ..s3exception import S3Exception, error_from_facts

# What S3 accepts as x-amz-storage-class on a general purpose bucket; anything else (OUTPOSTS and SNOW
# belong to S3 on Outposts and Snowball) is refused with InvalidStorageClass.
_STORAGE_CLASSES = frozenset(
    {
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER",
        "DEEP_ARCHIVE",
        "GLACIER_IR",
        "EXPRESS_ONEZONE",
    }
)

_T = TypeVar("_T")

# Archived until restored, which nothing here does: GET and copy refuse them.
_ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})

# S3's smallest part: the native writer uploads in parts of max(part_size, this) (cpp/client.h).
_MIN_UPLOAD_PART_SIZE = 5 * 1024 * 1024


class ObjectInfo:
    """Mirrors ``_native.ObjectInfo``: read-only attributes; not a sequence, equal only to itself, and
    not picklable, as the native object is none of these."""

    __slots__ = ("_key", "_etag", "_size", "_last_modified", "_storage_class", "_restore")

    def __init__(self, key: str, etag: str, size: int, last_modified: str, storage_class: str, restore: str = ""):
        self._key = key
        self._etag = etag
        self._size = size
        self._last_modified = last_modified
        self._storage_class = storage_class
        self._restore = restore  # the x-amz-restore header; nothing here is ever restored

    key = property(operator.attrgetter("_key"))
    etag = property(operator.attrgetter("_etag"))
    size = property(operator.attrgetter("_size"))
    last_modified = property(operator.attrgetter("_last_modified"))
    storage_class = property(operator.attrgetter("_storage_class"))
    restore = property(operator.attrgetter("_restore"))

    def __repr__(self) -> str:
        return f"ObjectInfo(key={self._key!r}, etag={self._etag!r}, size={self._size})"

    def __reduce__(self):
        raise TypeError(f"cannot pickle {type(self).__qualname__!r} object")


class ListPage:
    """Mirrors ``_native.ListPage``: read-only attributes, and each read of a list gives a new list (the
    native page converts its vectors on every access), so a caller's changes never reach the page."""

    __slots__ = ("_objects", "_common_prefixes", "_next_continuation_token")

    def __init__(self, objects: List[ObjectInfo], common_prefixes: List[str], next_continuation_token: str):
        self._objects = objects
        self._common_prefixes = common_prefixes
        self._next_continuation_token = next_continuation_token

    @property
    def objects(self) -> List[ObjectInfo]:
        return list(self._objects)

    @property
    def keys(self) -> List[str]:
        return [info.key for info in self._objects]

    def add_to(self, writer, bucket: str, end: int) -> None:
        """The page's first ``end`` objects into an object index (``_native.ObjectIndexWriter``)."""
        for info in self._objects[:end]:
            writer.add(bucket, info.key, info.size, info.etag, info.storage_class or "", info.last_modified)

    @property
    def common_prefixes(self) -> List[str]:
        return list(self._common_prefixes)

    @property
    def next_continuation_token(self) -> str:
        return self._next_continuation_token

    def __reduce__(self):
        raise TypeError(f"cannot pickle {type(self).__qualname__!r} object")


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


# ---- arguments, refused as the native binding (pybind11) refuses them: TypeError, before any request


def _refused(method: str, name: str, value) -> TypeError:
    return TypeError(f"{method}(): incompatible function arguments: {name} cannot be {type(value).__name__}")


def _text(method: str, name: str, value) -> str:
    """A std::string parameter: str, or bytes/bytearray (taken as UTF-8)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    raise _refused(method, name, value)


def _integer(method: str, name: str, value, low: int, high: int) -> int:
    """An integer parameter of a C type holding [low, high]: anything with __index__ but a float."""
    if isinstance(value, float) or not hasattr(type(value), "__index__"):
        raise _refused(method, name, value)
    number = operator.index(value)
    if not low <= number <= high:
        raise _refused(method, name, value)
    return number


def _offset(method: str, name: str, value) -> Optional[int]:
    """An std::optional<uint64_t> byte offset."""
    return None if value is None else _integer(method, name, value, 0, 2**64 - 1)


def _etag_of(data: bytes, part_size: int) -> str:
    """S3's ETag for ``data`` uploaded in parts of ``part_size`` (one part: a plain PutObject)."""
    if len(data) <= part_size:
        return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
    view = memoryview(data)
    digests = b"".join(
        hashlib.md5(view[start : start + part_size], usedforsecurity=False).digest()
        for start in range(0, len(data), part_size)
    )
    parts = -(-len(data) // part_size)
    return '"' + hashlib.md5(digests, usedforsecurity=False).hexdigest() + f'-{parts}"'


def _new_object(data: bytes, storage_class: str, part_size: int) -> _Object:
    return _Object(data, _etag_of(data, part_size), int(time.time()), storage_class)


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
    """One bucket named ``bucket``; requests for any other bucket fail as they fail on S3 without it.

    Thread-safe. Pickling copies the objects: an unpickled store (e.g. in a spawned DataLoader
    worker) starts with the objects the original held, and is independent of it from then on.
    """

    def __init__(self, bucket: str, part_size: int = 8 * 1024 * 1024):
        self.bucket = bucket
        self._part_size = part_size
        self._upload_part_size = max(part_size, _MIN_UPLOAD_PART_SIZE)
        self._objects: Dict[str, _Object] = {}
        self._lock = threading.Lock()
        # ObjectVersion.etag cannot be set from Python, so the ETag each reader pinned is kept here.
        self._pins: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        # Requests, bytes and failures per operation, in the native client's metrics layout (no latencies here).
        self._counts: Dict[str, Dict[str, int]] = {}

    def __getstate__(self):
        return {"bucket": self.bucket, "part_size": self._part_size, "objects": self._objects}

    def __setstate__(self, state):
        self.__init__(state["bucket"], state["part_size"])
        self._objects = state["objects"]

    # ---- the original mock's additions

    def add_object(self, key: str, data) -> None:
        """Stores ``data`` (any bytes-like object, copied) as a STANDARD object, as if this client's writer
        had uploaded it."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"key must be a non-empty string, got {key!r}")
        stored = _new_object(bytes(data), "STANDARD", self._upload_part_size)
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

    def _count(self, operation: str, payload_bytes: int = 0, failed: bool = False) -> None:
        """One request, and whether S3 answered it with an error (retries, throttles and latencies are the
        network's, and are left at zero here)."""
        with self._lock:
            counts = self._counts.setdefault(operation, dict.fromkeys(_metrics.COUNTERS, 0))
            counts["requests"] += 1
            counts["bytes"] += payload_bytes
            counts["failed"] += int(failed)

    def _request(self, operation: str, answer: Callable[[], _T]) -> _T:
        """``answer()`` as one request of ``operation``: counted, and counted as failed if it raises S3's error."""
        try:
            result = answer()
        except S3Exception:
            self._count(operation, failed=True)
            raise
        self._count(operation)
        return result

    def get_object(
        self,
        bucket: str,
        key: str,
        start: Optional[int] = None,
        end: Optional[int] = None,
        whole: bool = False,
        version: Optional["_native.ObjectVersion"] = None,
    ) -> "GetStream":
        bucket = _text("get_object", "bucket", bucket)
        key = _text("get_object", "key", key)
        start = _offset("get_object", "start", start)
        end = _offset("get_object", "end", end)
        if version is not None and not isinstance(version, _native.ObjectVersion):
            raise _refused("get_object", "version", version)
        if start is not None and end is not None and end < start:
            raise ValueError(f"range end {end} is before its start {start}")
        ranged = start is not None or end is not None
        begin = start or 0
        if end is not None and end == begin:
            return GetStream(bucket, key, begin, ObjectInfo(key, "", 0, "", ""))  # the native client sends no request
        try:
            stored = self._find("GetObject", bucket, key)
            self._check_version(version, stored, bucket, key)
            if stored.storage_class in _ARCHIVE_CLASSES:
                raise _s3_exception(
                    "InvalidObjectState",
                    403,
                    "GetObject",
                    bucket,
                    key,
                    "The operation is not valid for the object's storage class",
                )
        except S3Exception as error:
            self._count("GetObject", failed=True)
            # Each read raises a fresh copy (with its own traceback), as each native read does.
            return GetStream(bucket, key, begin, None, failure=partial(copy.copy, error))
        if ranged and begin >= len(stored.data):
            # S3 answers 416 (a failed request); the native stream makes that an empty read, as a file would.
            self._count("GetObject", failed=True)
            return GetStream(bucket, key, begin, ObjectInfo(key, "", 0, "", ""))
        body = memoryview(stored.data)[begin:end]
        self._count("GetObject", len(body))
        chunk_size = len(body) if whole else self._part_size
        return GetStream(bucket, key, begin, _header_info(key, stored), body, chunk_size)

    def put_object(self, bucket: str, key: str, storage_class: str = "") -> "PutStream":
        bucket = _text("put_object", "bucket", bucket)
        key = _text("put_object", "key", key)
        storage_class = _text("put_object", "storage_class", storage_class)
        return PutStream(self, bucket, key, storage_class)

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        bucket = _text("head_object", "bucket", bucket)
        key = _text("head_object", "key", key)
        # A HEAD's error has no body: a missing bucket is only a 404, which names no bucket (s3exception.py).
        return self._request("HeadObject", lambda: _header_info(key, self._find("HeadObject", bucket, key, True)))

    def delete_object(self, bucket: str, key: str) -> None:
        bucket = _text("delete_object", "bucket", bucket)
        key = _text("delete_object", "key", key)

        def delete() -> None:
            self._check_bucket("DeleteObject", bucket, key)
            with self._lock:
                self._objects.pop(key, None)  # deleting a missing key succeeds, as on S3

        self._request("DeleteObject", delete)

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        src_bucket = _text("copy_object", "src_bucket", src_bucket)
        src_key = _text("copy_object", "src_key", src_key)
        dst_bucket = _text("copy_object", "dst_bucket", dst_bucket)
        dst_key = _text("copy_object", "dst_key", dst_key)
        # The CRT HEADs the source first, without a body in its error: whatever is missing there, bucket or
        # key, is the source's NoSuchKey (the native client names the source in it).
        source = self._request("CopyObject", lambda: self._find("CopyObject", src_bucket, src_key, True))

        def copy_request() -> None:
            self._check_bucket("CopyObject", dst_bucket, dst_key)
            if source.storage_class in _ARCHIVE_CLASSES:
                raise _s3_exception(
                    "ObjectNotInActiveTierError",
                    403,
                    "CopyObject",
                    dst_bucket,
                    dst_key,
                    "The source object of the COPY operation is not in the active tier and is only stored in "
                    "Amazon Glacier.",
                )
            if (src_bucket, src_key) == (dst_bucket, dst_key):
                raise _s3_exception(
                    "InvalidRequest",
                    400,
                    "CopyObject",
                    dst_bucket,
                    dst_key,
                    "This copy request is illegal because it is trying to copy an object to itself without changing "
                    "the object's metadata, storage class, website redirect location or encryption attributes.",
                )
            # A copy is a new object, copied in one request: the MD5 of its bytes as ETag (even of a multipart
            # source), a new time, and STANDARD (the native client asks for no class).
            copied = _new_object(source.data, "STANDARD", part_size=max(len(source.data), 1))
            with self._lock:
                self._objects[dst_key] = copied

        self._request("CopyObject", copy_request)

    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = 1000,
        continuation_token: str = "",
        start_after: str = "",
    ) -> ListPage:
        bucket = _text("list_objects", "bucket", bucket)
        prefix = _text("list_objects", "prefix", prefix)
        delimiter = _text("list_objects", "delimiter", delimiter)
        max_keys = _integer("list_objects", "max_keys", max_keys, -(2**31), 2**31 - 1)
        continuation_token = _text("list_objects", "continuation_token", continuation_token)
        start_after = _text("list_objects", "start_after", start_after)
        return self._request(
            "ListObjectsV2", lambda: self._list(bucket, prefix, delimiter, max_keys, continuation_token, start_after)
        )

    def _list(
        self, bucket: str, prefix: str, delimiter: str, max_keys: int, continuation_token: str, start_after: str
    ) -> ListPage:
        self._check_bucket("ListObjectsV2", bucket, "")
        # As S3: a continuation token names where the listing stands; start-after counts only without one.
        after = self._decode_token(bucket, continuation_token) if continuation_token else start_after
        with self._lock:
            objects = dict(self._objects)
        keys = sorted(k for k in objects if k.startswith(prefix))
        infos: List[ObjectInfo] = []
        prefixes: List[str] = []
        last_name = None
        # Entries (objects and common prefixes) in key order; each common prefix counts once.
        for key in keys[bisect.bisect_right(keys, after) if after else 0 :]:
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            name = key if cut < 0 else key[: cut + len(delimiter)]
            if name == last_name or (after and name <= after):
                continue  # a common prefix already given, on this page or an earlier one
            if len(infos) + len(prefixes) >= max_keys:
                return ListPage(infos, prefixes, _encode_token(last_name) if last_name else "")
            if cut < 0:
                stored = objects[key]
                infos.append(
                    ObjectInfo(
                        key, stored.etag, len(stored.data), _iso_time(stored.last_modified), stored.storage_class
                    )
                )
            else:
                prefixes.append(name)
            last_name = name
        return ListPage(infos, prefixes, "")

    # ---- helpers

    def _check_bucket(self, operation: str, bucket: str, key: str) -> None:
        if bucket != self.bucket:
            raise _s3_exception("NoSuchBucket", 404, operation, bucket, key)

    def _find(self, operation: str, bucket: str, key: str, head: bool = False) -> _Object:
        """The object, or the error of a GET (``head``: of a HEAD, which cannot tell a missing bucket)."""
        if not head:
            self._check_bucket(operation, bucket, key)
        with self._lock:
            stored = self._objects.get(key) if bucket == self.bucket else None
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
        def put() -> None:
            self._check_bucket("PutObject", bucket, key)
            if (storage_class or "STANDARD") not in _STORAGE_CLASSES:
                raise _s3_exception(
                    "InvalidStorageClass",
                    400,
                    "PutObject",
                    bucket,
                    key,
                    "The storage class you specified is not valid",
                )
            stored = _new_object(data, storage_class or "STANDARD", self._upload_part_size)
            with self._lock:
                self._objects[key] = stored

        self._request("PutObject", put)
        with self._lock:  # the bytes of an upload count once it succeeded, as the native writer counts them
            self._counts["PutObject"]["bytes"] += len(data)

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
        self._bucket = bucket
        self._key = key
        self._start = start  # object offset of body[0]
        self._info = info
        self._body = body
        self._position = 0
        self._chunk_size = chunk_size
        self._failure = failure  # makes the request's error, raised by every read, as the native does
        self._closed = False

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def key(self) -> str:
        return self._key

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
        self._check_open()
        return self._take(len(self._body)).tobytes()

    def land_bytes(self) -> bytes:
        return self.read_all_bytes()  # here every byte has landed at once

    def wait_landed(self, start: int, end: int) -> None:
        self._check()

    def has_landed(self, start: int, end: int) -> bool:
        return True

    def next_chunk(self) -> Optional[bytearray]:
        self._check_open()
        piece = self._take(self._chunk_size or len(self._body))
        return bytearray(piece) if len(piece) else None

    def readinto(self, buffer) -> int:
        target = _writable_bytes(buffer)
        self._check_not_closed()
        if len(target) == 0:
            return 0
        self._check()
        piece = self._take(len(target))
        target[: len(piece)] = piece
        return len(piece)

    def close(self) -> None:
        # Nothing more to read: reads raise, as the native stream's do; the position stays where the reads left it.
        self._body = self._body[: self._position]
        self._closed = True

    def _check_not_closed(self) -> None:
        if self._closed:
            raise RuntimeError("the stream is closed")

    def _check_open(self) -> None:
        self._check_not_closed()
        self._check()

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
        self._bucket = bucket
        self._key = key
        self._storage_class = storage_class
        self._parts: List[bytes] = []
        self._bytes_written = 0
        self._ended = False

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def key(self) -> str:
        return self._key

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
        self._store._store(self._bucket, self._key, data, self._storage_class)

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
