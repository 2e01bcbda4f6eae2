"""What a read does when the node cache is on.

- The entry holds the version the read wants (its ETag is known from a listing, a manifest or
  ``object_info``): served from local disk, no request at all.
- The version is not known: one HEAD says which is current; the entry is served if it holds that one.
- Otherwise, for a read of the whole object: one process of the node downloads it into the cache,
  the others wait for that download (on the lock of its ``.part`` file) and read what it wrote.
  A read of a byte range of an object not cached goes to S3 and is not kept.
- The disk fails (full, unwritable, a downloader that stopped moving): the read goes to S3, and the
  log says so once per process and cause. The cache never fails a read S3 would serve.
"""

import errno
import fcntl
import logging
import os
import time
import uuid
from functools import partial
from typing import Dict, List, Optional, Protocol, Tuple

from .. import _native
from .._metrics import CACHE_COUNTERS
from ..s3reader.s3reader import readinto_full
from .cached_stream import CachedStream, OpenEntry
from .deferred_stream import DeferredStream
from .directory import PART_SUFFIX, CacheDirectory, same_file, touch
from .entry_format import (
    HEADER_SIZE,
    EntryHeader,
    block_checksums,
    block_count,
    cacheable,
    decode,
    decode_checksums,
    encode,
    entry_file_size,
)
from .settings import CacheSettings

log = logging.getLogger(__name__)

_CHUNK = 8 << 20  # bytes moved from the download to the file at a time: a multiple of BLOCK_SIZE
_FIRST_WAIT = 0.0005  # seconds; doubling to _LAST_WAIT while another process downloads
_LAST_WAIT = 0.05
_TOUCH_AFTER = 60.0  # seconds: an entry's time of last use is kept this precisely (not a write per hit)
_LOCKED, _DONE, _STALLED = "locked", "done", "stalled"  # how a wait for a `.part` ends
_warned: set = set()


class PinnedObject(Protocol):
    """One reader's object, as the client's ``_PinnedStreams`` offers it to the cache."""

    bucket: str
    key: str

    @property
    def known_etag(self) -> str: ...
    def pin(self, etag: str) -> None: ...
    def current_etag(self) -> str: ...
    def from_s3(self, start: Optional[int], end: Optional[int]) -> "_native.GetObjectStream": ...


class _DiskError(Exception):
    """The cache's disk failed an operation: the read goes to S3 instead."""


def version_of(etag: str) -> str:
    """The ETag as a version name (strong comparison, RFC 9110): quotes dropped; "" for a weak or
    missing one, which names no version the cache can keep."""
    if not etag or etag.startswith("W/"):
        return ""
    return etag.strip('"')


class NodeCache:
    """This process's view of the node's cache directory, with its own counters."""

    def __init__(self, settings: CacheSettings, endpoint: str, stall_timeout_seconds: float):
        self._settings = settings
        self._endpoint = endpoint
        self._stall_timeout = stall_timeout_seconds
        self._directory: Optional[CacheDirectory] = None
        self._unusable = False
        self._counters: Dict[str, int] = dict.fromkeys(CACHE_COUNTERS, 0)

    def counters(self) -> Dict[str, int]:
        counters = dict(self._counters)
        counters["evictions"] = self._directory.evictions if self._directory is not None else 0
        return counters

    def stream(self, pinned: PinnedObject, start: Optional[int], end: Optional[int]):
        """A stream of bytes [start, end) of the object (all of it with ``(None, None)``)."""
        directory = self._open_directory()
        if directory is None:
            return pinned.from_s3(start, end)
        try:
            return self._stream(directory, pinned, start, end)
        except _DiskError as error:
            self._fall_back(str(error), error.__cause__)
            return pinned.from_s3(start, end)

    def read_derived(self, name: str) -> Optional[bytes]:
        """What ``keep_derived(name, ...)`` kept on this node; None when nothing is kept under ``name``
        (or it was evicted, or the disk fails). The caller checks what it reads."""
        directory = self._open_directory()
        if directory is None:
            return None
        try:
            fd = os.open(directory.derived_path(name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # eviction takes only what no one reads
            stat = os.fstat(fd)
            if stat.st_nlink == 0:  # evicted between open and lock
                return None
            data = os.pread(fd, stat.st_size, 0)
            if time.time() - stat.st_mtime > _TOUCH_AFTER:
                touch(fd)
            return data if len(data) == stat.st_size else None
        except OSError:
            return None
        finally:
            _close(fd)

    def keep_derived(self, name: str, data: bytes) -> bool:
        """Keeps ``data``, a small file derived from an object version (a tar shard's index), under
        ``name`` for every process of the node, within the cache's bound (least recently used
        entries are evicted to make room). False when it could not be kept (no room, a disk failure)."""
        directory = self._open_directory()
        if directory is None:
            return False
        path = directory.derived_path(name)
        part = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError:
            return False
        published = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a `.part` no one holds is a dead process's: eviction removes it
            _write_all(fd, memoryview(data), 0)
            published = directory.publish(part, path, len(data))
        except (OSError, _DiskError):
            published = False
        finally:
            if not published:
                _unlink_if_same(fd, part)
            _close(fd)
        return published

    def _open_directory(self) -> Optional[CacheDirectory]:
        if self._directory is None and not self._unusable:
            try:
                self._directory = CacheDirectory(self._settings.directory, self._settings.max_bytes)
            except OSError as error:
                self._unusable = True
                _warn_once(
                    "directory",
                    "the node cache in %s cannot be used (%s): every read goes to S3",
                    self._settings.directory,
                    error,
                )
        return self._directory

    def _stream(self, directory: CacheDirectory, pinned: PinnedObject, start, end):
        path = directory.entry_path(self._endpoint, pinned.bucket, pinned.key)
        wanted = version_of(pinned.known_etag)
        entry = self._open_entry(directory, path, pinned)
        if entry is not None:
            try:
                if not wanted:
                    self._counters["revalidations"] += 1
                    wanted = version_of(pinned.current_etag())
                    pinned.pin(wanted)  # a download that follows reads this version, not a newer one
            except BaseException:
                _close(entry.fd)
                raise
            if wanted and wanted == version_of(entry.header.etag):
                return self._hit(entry, pinned, start, end)
            _close(entry.fd)
        if (start or 0) != 0 or end is not None:
            return pinned.from_s3(start, end)  # byte ranges are not kept: see the module's docstring
        return self._fill(directory, path, pinned, wanted)

    def _hit(self, entry: OpenEntry, pinned: PinnedObject, start, end) -> CachedStream:
        self._counters["hits"] += 1
        return self._serve(entry, pinned, start, end, self._count_bytes)

    def _serve(self, entry: OpenEntry, pinned: PinnedObject, start, end, on_bytes, preloaded=None) -> CachedStream:
        pinned.pin(entry.header.etag)
        return CachedStream(
            entry,
            pinned.bucket,
            start,
            end,
            from_s3=pinned.from_s3,
            on_damage=self._damaged,
            on_bytes=on_bytes,
            preloaded=preloaded,
        )

    def _count_bytes(self, n: int) -> None:
        self._counters["bytes_from_cache"] += n

    def _damaged(self, entry: OpenEntry) -> None:
        _warn_once("damaged", "a node cache entry no longer matched its checksums; it was dropped: %s", entry.path)
        directory = self._directory
        if directory is not None:
            try:
                directory.forget(entry.path, entry.fd)
            except OSError:
                pass

    def _fall_back(self, reason: str, cause: object = None) -> None:
        self._counters["fallbacks"] += 1
        _warn_once(reason, "the node cache: %s (%s); such reads go to S3 instead", reason, cause)

    def _open_entry(self, directory: CacheDirectory, path: str, pinned: PinnedObject) -> Optional[OpenEntry]:
        """The entry of this object open for reading, or None (none, being evicted, or damaged)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise _DiskError("cannot open an entry") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            stat = os.fstat(fd)
            if stat.st_nlink == 0:  # evicted between open and lock
                _close(fd)
                return None
            header, checksums, file_size = decode(os.pread(fd, HEADER_SIZE, 0), self._endpoint)
            if header.key != pinned.key or header.bucket != pinned.bucket:
                raise ValueError("the entry is another object's")
            if stat.st_size != file_size:
                raise ValueError("the entry's size is not the one its header gives")
            if checksums is None:  # a large object's: after its bytes
                checksums = decode_checksums(os.pread(fd, 4 * block_count(header.size), HEADER_SIZE + header.size))
            if time.time() - stat.st_mtime > _TOUCH_AFTER:
                touch(fd)
            return OpenEntry(fd, path, header, checksums)
        except ValueError:
            self._damaged(OpenEntry(fd, path, EntryHeader("", "", "", "", 0), []))
            _close(fd)
            return None
        except OSError as error:
            _close(fd)
            raise _DiskError("cannot read an entry") from error
        except BaseException:
            _close(fd)
            raise

    def _fill(self, directory: CacheDirectory, path: str, pinned: PinnedObject, wanted: str):
        """The whole object, through the cache. Never waits: a download this process starts has its
        GET in flight when this returns (the datasets' read-ahead keeps several going), and waiting
        for another process's download happens at the first read."""
        part = path + PART_SUFFIX
        fd = self._open_part(part)
        if _try_lock(fd) and same_file(fd, part):
            return self._start_download(directory, fd, part, path, pinned, wanted)
        _close(fd)
        wait = partial(self._or_s3, pinned, partial(self._after_waiting, directory, path, pinned, wanted))
        return DeferredStream(pinned.bucket, pinned.key, wait, _nothing)

    def _after_waiting(self, directory: CacheDirectory, path: str, pinned: PinnedObject, wanted: str):
        """Waits for the download another process is at, then reads its entry, or downloads the
        object itself if that process gave up (or died)."""
        part = path + PART_SUFFIX
        while True:
            fd = self._open_part(part)
            state = self._wait_for_lock(fd, part)
            if state == _STALLED:
                _close(fd)
                self._fall_back("another process's download into the cache stopped moving", part)
                return pinned.from_s3(0, None)
            if state == _LOCKED:
                return self._start_download(directory, fd, part, path, pinned, wanted)
            _close(fd)  # that download is done (renamed into place) or was given up: look again
            entry = self._open_entry(directory, path, pinned)
            if entry is not None:
                if not wanted or wanted == version_of(entry.header.etag):
                    return self._hit(entry, pinned, None, None)
                _close(entry.fd)

    def _or_s3(self, pinned: PinnedObject, read):
        """``read()``, or the whole object straight from S3 if the cache's disk fails on the way."""
        try:
            return read()
        except _DiskError as error:
            self._fall_back(str(error), error.__cause__)
            return pinned.from_s3(0, None)

    def _open_part(self, part: str) -> int:
        try:
            return os.open(part, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            pass  # its folder is not there yet (or was removed): made below
        except OSError as error:
            raise _DiskError("cannot write into the cache directory") from error
        try:
            os.makedirs(os.path.dirname(part), exist_ok=True)
            return os.open(part, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as error:
            raise _DiskError("cannot write into the cache directory") from error

    def _wait_for_lock(self, fd: int, part: str) -> str:
        """Waits until this process holds the `.part` open as ``fd`` (_LOCKED), the download there
        ended (_DONE: the file was renamed into place, where readers now hold it, or given up), or
        its downloader stopped writing for the stall timeout (_STALLED). Polls, so that the wait
        ends on Ctrl-C and the GIL is free while asleep."""
        delay = _FIRST_WAIT
        size = -1
        moved = time.monotonic()
        while True:
            if _try_lock(fd):
                return _LOCKED if same_file(fd, part) else _DONE
            if not same_file(fd, part):
                return _DONE
            now_size = os.fstat(fd).st_size
            if now_size != size:
                size, moved = now_size, time.monotonic()
            elif time.monotonic() - moved > self._stall_timeout:
                return _STALLED
            time.sleep(delay)
            delay = min(2 * delay, _LAST_WAIT)

    def _start_download(
        self, directory: CacheDirectory, fd: int, part: str, path: str, pinned: PinnedObject, wanted: str
    ):
        """With the `.part` locked: the entry, if another process published it since the first
        look; else a GET sent now, written into the cache at the first read."""
        try:
            entry = self._open_entry(directory, path, pinned)
            if entry is not None and (not wanted or wanted == version_of(entry.header.etag)):
                _remove_part(fd, part)
                return self._hit(entry, pinned, None, None)
            if entry is not None:
                _close(entry.fd)
            # Streamed in order (not landed whole): the `.part` grows as parts arrive, which is how
            # processes waiting on it see that this download still moves.
            stream = pinned.from_s3(0, None)
        except BaseException:
            _remove_part(fd, part)
            raise
        self._counters["misses"] += 1
        finish = partial(self._or_s3, pinned, partial(self._finish_download, directory, fd, part, path, pinned, stream))
        return DeferredStream(pinned.bucket, pinned.key, finish, partial(_give_up, stream, fd, part))

    def _finish_download(self, directory: CacheDirectory, fd: int, part: str, path: str, pinned: PinnedObject, stream):
        try:
            info = stream.info()  # an S3 error is raised here, as it would be without the cache
        except BaseException:
            _give_up(stream, fd, part)
            raise
        header = EntryHeader(self._endpoint, pinned.bucket, pinned.key, info.etag, info.size)
        if not version_of(info.etag) or not cacheable(header) or entry_file_size(header) > directory.max_bytes:
            # No version to keep it under (a weak ETag), names too long for a header, or larger than
            # the whole cache: straight from S3.
            _remove_part(fd, part)
            return stream
        try:
            checksums, body = self._write_entry(fd, stream, header)
        except BaseException:  # a _DiskError too: _or_s3 then reads from S3 afresh
            _remove_part(fd, part)
            raise
        finally:
            stream.close()
        try:
            published = directory.publish(part, path, entry_file_size(header))
        except OSError as error:
            published = False
            self._fall_back("cannot publish an entry", error)
        if published:
            fcntl.flock(fd, fcntl.LOCK_SH)  # a reader now, like any other
        else:
            _unlink_if_same(fd, part)  # no room: read from the open file, gone when it closes
        # This process's bytes came from S3: not counted as served from the cache.
        return self._serve(OpenEntry(fd, path, header, checksums), pinned, None, None, _not_counted, body)

    def _write_entry(self, fd: int, stream, header: EntryHeader) -> Tuple[List[int], Optional[bytes]]:
        """The object's bytes from ``stream`` into the `.part` open as ``fd``, then its checksums and
        header. Returns the checksums, and the object's bytes when it came in one piece (an object of
        up to _CHUNK bytes): the reader takes them as they are, without reading the file back."""
        size = header.size
        if os.fstat(fd).st_size:
            # A `.part` left by a dead process, maybe longer than this object. Not for a new file: on
            # ext4, closing a file truncated to nothing and written again starts its writeback at once.
            _truncate(fd)
        body: Optional[bytes] = None
        if size <= _CHUNK:
            body = stream.land_bytes()
            stream.wait_landed(0, size)
            if len(body) != size:
                raise ValueError(f"the download of s3://{header.bucket}/{header.key} ended early")
            checksums = block_checksums(memoryview(body))
            _write_all(fd, memoryview(body), HEADER_SIZE)
        else:
            checksums = self._write_in_chunks(fd, stream, header)
        block, trailer = encode(header, checksums)
        if trailer:
            _write_all(fd, memoryview(trailer), HEADER_SIZE + size)
        _write_all(fd, memoryview(block), 0)  # last: a header names only bytes already written
        return checksums, body

    def _write_in_chunks(self, fd: int, stream, header: EntryHeader) -> List[int]:
        """A large object through a buffer of _CHUNK bytes: memory stays bounded."""
        buffer = memoryview(bytearray(_CHUNK))
        checksums: List[int] = []
        position = 0
        while position < header.size:
            want = buffer[: min(len(buffer), header.size - position)]
            got = readinto_full(stream, want)
            if got != len(want):
                raise ValueError(f"the download of s3://{header.bucket}/{header.key} ended early")
            checksums.extend(block_checksums(want))
            _write_all(fd, want, HEADER_SIZE + position)
            position += got
        return checksums


def _not_counted(n: int) -> None:
    pass


def _nothing() -> None:
    pass


def _give_up(stream, fd: int, part: str) -> None:
    """A download that will not be finished: its GET cancelled, its `.part` removed and unlocked."""
    stream.close()
    _remove_part(fd, part)


def _write_all(fd: int, data: memoryview, offset: int) -> None:
    try:
        while len(data):
            n = os.pwrite(fd, data, offset)
            data, offset = data[n:], offset + n
    except OSError as error:
        reason = "the disk is full" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "cannot write"
        raise _DiskError(reason) from error


def _truncate(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
    except OSError as error:
        raise _DiskError("cannot write") from error


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _remove_part(fd: int, part: str) -> None:
    _unlink_if_same(fd, part)
    _close(fd)


def _unlink_if_same(fd: int, part: str) -> None:
    try:
        if same_file(fd, part):
            os.unlink(part)
    except OSError:
        pass


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _warn_once(reason: str, message: str, *args) -> None:
    if reason not in _warned:
        _warned.add(reason)
        log.warning(message, *args)
