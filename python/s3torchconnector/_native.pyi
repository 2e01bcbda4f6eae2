"""The native S3 engine (C++ over the AWS Common Runtime). Internal: use S3Client and friends.

Every blocking call releases the GIL and raises KeyboardInterrupt on Ctrl-C, cancelling its request.
"""

from array import array
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, type_check_only

from typing_extensions import Never

# Native logs (policy and docs: s3torchconnector._logging). Levels are the CRT's: 0 none, 1 fatal,
# 2 error, 3 warn, 4 info, 5 debug, 6 trace. Targets: "awscrt::<subject>" per CRT log subject,
# "awscrt" for subjects without a registered name, "s3torchconnectorclient" for this module's messages.

def shuffled_positions(n: int, mt_state: Sequence[int]) -> "array[int]":
    """random.Random with this state's shuffle of list(range(n)) (mt_state: Random.getstate()[1]), n < 2**31,
    as an array('I'): 4 bytes a position."""

OBJECT_INDEX_VERSION: int

def _parse_list_result(document: bytes) -> Optional[Tuple[List[Tuple[str, str, int, str, str]], List[str], str, bool]]:
    """For the tests: ([(key, ETag, size, LastModified, storage class)], common prefixes, next continuation
    token, truncated) as list_objects reads a ListBucketResult; None when it is not one."""

def crc32c(data: object, previous: int = 0) -> int:
    """The CRC32C (Castagnoli) of a contiguous bytes-like object, continuing from ``previous``; hardware
    accelerated where the CPU has it. Releases the GIL for buffers of 1 MiB or more."""

def is_directory_bucket(bucket: str) -> bool:
    """Whether ``bucket`` names an S3 Express One Zone directory bucket ("<base>--<zone id>--x-s3")."""

def log_targets() -> List[str]:
    """Every log target, in a fixed order."""

def set_log_levels(sink: str, levels: Mapping[str, int]) -> None:
    """Sets the levels of sink "writer" (stderr or hourly files) or "python" (the queue Python drains);
    targets not given are off. Installs the CRT logger, once per process, when a level is first above 0."""

def set_log_directory(directory: str) -> None:
    """The writer's destination: "" for stderr, or an existing folder for s3torchconnectorclient.log.YYYY-MM-DD-HH files."""

def log_level() -> int:
    """The most detailed level of any target in any sink; 0 when nothing is logged (and nothing formatted)."""

def take_log_records(wait: bool) -> Tuple[List[Tuple[str, int, float, int, str]], int, int]:
    """The records queued for Python as (target, level, time, native thread id, message), oldest first; how many
    were dropped since the last call (the queue was full); and the number of the last waiting take (this one's,
    with ``wait``). With ``wait``, blocks (GIL released) until there is a record; never returns while the
    interpreter shuts down."""

def set_exception_factory(factory: Callable[[Dict[str, object]], BaseException]) -> None:
    """Every failed request is raised as what ``factory`` makes of its facts (operation, bucket, key,
    endpoint, status, code, server_message, request_id, crt_error, crt_error_text, retryable,
    max_attempts, ca_bundle): s3exception.py sets it at import."""

# The classes below are pybind11's: their metaclass is pybind11_builtins.pybind11_type (not importable),
# their attributes are read-only properties, and those made only by the module have no constructor (the
# inherited one takes any arguments and raises TypeError: "No constructor defined!").

@type_check_only
class _pybind11_type(type):
    """pybind11_builtins.pybind11_type, the metaclass of every class the module defines."""

class Buffer(metaclass=_pybind11_type):
    """Bytes owned by the native module, exposed through the buffer protocol (memoryview(buf))."""

    def __init__(self, *args: Never, **kwargs: Never) -> None:
        """Made only by the module: raises TypeError."""
    def __len__(self) -> int: ...

class ObjectInfo(metaclass=_pybind11_type):
    def __init__(self, *args: Never, **kwargs: Never) -> None:
        """Made only by the module: raises TypeError."""
    @property
    def key(self) -> str: ...
    @property
    def etag(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def last_modified(self) -> str: ...  # as S3 sent it
    @property
    def storage_class(self) -> str: ...  # "" when S3 did not say
    @property
    def restore(self) -> str: ...  # the x-amz-restore header of a HEAD; "" when none

class ListPage(metaclass=_pybind11_type):
    """Each read of ``objects`` or ``common_prefixes`` converts the page's vector into a new list."""

    def __init__(self, *args: Never, **kwargs: Never) -> None:
        """Made only by the module: raises TypeError."""
    @property
    def objects(self) -> List[ObjectInfo]: ...
    @property
    def keys(self) -> List[str]:
        """The objects' keys, without making the objects."""
    def add_to(self, writer: "ObjectIndexWriter", bucket: str, end: int) -> None:
        """Adds the page's first ``end`` objects to ``writer``, natively."""
    @property
    def common_prefixes(self) -> List[str]: ...
    @property
    def next_continuation_token(self) -> str: ...  # "" on the last page

class ObjectVersion(metaclass=_pybind11_type):
    """Shared by the GETs of one reader: the first response's ETag, sent as If-Match by the later
    ones; a response with another ETag fails the read (the object was overwritten meanwhile)."""

    def __init__(self, etag: str = "") -> None:
        """``etag``: the version to read from the first request on; "" lets the first response decide."""
    @property
    def etag(self) -> str: ...  # "" until a response arrives, unless given

class GetObjectStream(metaclass=_pybind11_type):
    """A download started when made. Reads take bytes in order; errors surface at the first read."""

    def __init__(self, *args: Never, **kwargs: Never) -> None:
        """Made only by NativeClient.get_object: raises TypeError."""
    @property
    def bucket(self) -> str: ...
    @property
    def key(self) -> str: ...
    def info(self) -> ObjectInfo:
        """Waits for the response headers; size is the whole object's size."""
    def read_all_bytes(self) -> bytes:
        """The rest of the body as a bytes object, each part copied once straight into it."""
    def land_bytes(self) -> bytes:
        """A new bytes object the rest of the body lands in, in the background: its bytes may be read once
        wait_landed() said they are in. The stream holds a reference until its lander ended."""
    def wait_landed(self, start: int, end: int) -> None:
        """After land_bytes(): waits until the object's bytes [start, end) have landed, or no more will (a
        range past the end); raises the download's failure if it failed first."""
    def has_landed(self, start: int, end: int) -> bool:
        """After land_bytes(): whether the object's bytes [start, end) have landed, without waiting."""
    def next_chunk(self) -> Optional[Buffer]:
        """The next chunk in order, or None at the end. Memory is bounded by the read window."""
    def readinto(self, buffer: object) -> int:
        """Fills a writable buffer; returns the bytes written, fewer only at the end."""
    def close(self) -> None: ...
    # The original's stream interface: tell() and iteration over the body as bytes chunks.
    def tell(self) -> int:
        """The object offset of the next byte a read would return."""
    def __iter__(self) -> GetObjectStream: ...
    def __next__(self) -> bytes: ...

class PutObjectStream(metaclass=_pybind11_type):
    """An upload: small objects go up in one request, larger ones as a parallel multipart upload."""

    def __init__(self, *args: Never, **kwargs: Never) -> None:
        """Made only by NativeClient.put_object: raises TypeError."""
    @property
    def bytes_written(self) -> int: ...
    @property
    def bucket(self) -> str: ...
    @property
    def key(self) -> str: ...
    def write(self, data: object) -> int:
        """Takes any contiguous buffer; it may be reused once this returns."""
    def close(self) -> None:
        """Completes the upload."""
    def abort(self) -> None:
        """Cancels the upload: no object, no multipart upload left behind."""

class NativeClient(metaclass=_pybind11_type):
    def __init__(self, **kwargs: object) -> None:
        """Every field of ClientConfig (cpp/client.h) by name, none missing, none extra:
        S3ClientConfig.native_options() builds them."""
    def get_object(
        self,
        bucket: str,
        key: str,
        start: Optional[int] = None,
        end: Optional[int] = None,
        whole: bool = False,
        version: Optional[ObjectVersion] = None,
    ) -> GetObjectStream:
        """Bytes [start, end) of the object; ``whole`` fetches parts out of order into one buffer;
        ``version`` pins the request to the ETag the version's first response had (If-Match)."""
    def put_object(self, bucket: str, key: str, storage_class: str = "") -> PutObjectStream: ...
    def head_object(self, bucket: str, key: str) -> ObjectInfo: ...
    def delete_object(self, bucket: str, key: str) -> None: ...
    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None: ...
    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = 1000,
        continuation_token: str = "",
        start_after: str = "",
    ) -> ListPage: ...
    def metrics(self) -> Dict[str, object]:
        """Raw counters and latency histograms per operation; _metrics.shape() makes them readable."""

class ObjectIndex(metaclass=_pybind11_type):
    """An object index file (cpp/object_index.h), mapped read-only. OSError when it cannot be opened,
    ValueError when it is not a whole index of this version."""

    def __init__(self, path: str) -> None: ...
    def __len__(self) -> int: ...
    def entry(self, position: int) -> Tuple[str, str, int, str, str, str]:
        """(bucket, key, size or -1 when unknown, ETag or "", storage class, LastModified): the last two
        a listing's index keeps ("" in a manifest's). IndexError past the end."""
    @property
    def keys_digest(self) -> str:
        """SHA-256 (hex) of the keys in order, each followed by a NUL."""
    @property
    def path(self) -> str: ...
    @property
    def file_size(self) -> int: ...

class ObjectIndexWriter(metaclass=_pybind11_type):
    """Writes an object index file at ``path``, which must not exist (FileExistsError); ``listing``:
    each entry keeps its storage class and LastModified too."""

    def __init__(self, path: str, listing: bool = False) -> None: ...
    def add(
        self, bucket: str, key: str, size: int, etag: str, storage_class: str = "", last_modified: str = ""
    ) -> None:
        """size -1: unknown (the ETag is then not kept)."""
    def add_simple_lines(self, text: bytes, start: int, bucket: str) -> Tuple[int, int]:
        """Adds the lines of ``text`` from ``start`` in write_manifest's shape, as objects of ``bucket``
        (none when it is ""); stops before any other line and before a line with no newline. Returns
        (where it stopped, lines added)."""
    @property
    def count(self) -> int: ...
    def finish(self) -> None:
        """Completes the file; it is whole from here on."""
    def abandon(self) -> None:
        """Closes and removes the file."""
