"""The cache's folder, shared by every process on the node.

    <cache_dir>/s3torchconnector-cache-v1/
        lock            flock'ed while an entry is published or evicted; holds the bytes in use
        3f/3f9a...e1    one entry per object (entry_format), named by a hash of endpoint, bucket and key
        3f/3f9a...e1.part   an entry being downloaded, flock'ed by its downloader
        5c/5c07...9d.derived    a small file derived from an object version (a tar shard's index)

Locks are flock(2) locks: the kernel drops them when their process dies, however it dies, so a
crashed process blocks no one. Readers hold a shared lock on the entry they read; eviction takes
only entries it can lock exclusively. A `.part` whose lock is free belongs to a dead process.
"""

import fcntl
import hashlib
import logging
import os
import struct
from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

log = logging.getLogger(__name__)

LAYOUT = "s3torchconnector-cache-v1"
PART_SUFFIX = ".part"
DERIVED_SUFFIX = ".derived"
_PAGE = 4096
_USAGE = struct.Struct("<Q")


def disk_bytes(file_size: int) -> int:
    """What a file of ``file_size`` bytes takes on disk: whole pages."""
    return -(-file_size // _PAGE) * _PAGE


class CacheDirectory:
    """The shared folder: where each object's entry is, and the bound on the bytes they hold."""

    def __init__(self, directory: str, max_bytes: int):
        self.root = os.path.join(directory, LAYOUT)
        self.max_bytes = max_bytes
        os.makedirs(self.root, exist_ok=True)
        self._lock_path = os.path.join(self.root, "lock")
        # Opened now, so that an unwritable directory is found at once, not at the first download.
        os.close(os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666))
        self.evictions = 0

    def entry_path(self, endpoint: str, bucket: str, key: str) -> str:
        # Neither an endpoint nor a bucket name holds a newline: the joined text names one object.
        name = hashlib.sha256(f"{endpoint}\n{bucket}\n{key}".encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.root}/{name[:2]}/{name}"

    def derived_path(self, name: str) -> str:
        """Where the file derived from an object version that ``name`` (a hex digest of what it was
        derived from) names is kept: beside the entries, counted and evicted like them."""
        return f"{self.root}/{name[:2]}/{name}{DERIVED_SUFFIX}"

    @contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held for a rename or an eviction pass: never long
            yield fd
        finally:
            os.close(fd)

    def publish(self, part_path: str, path: str, file_size: int) -> bool:
        """Renames a complete ``.part`` into place, evicting least recently used entries first so the
        bound holds. False (and nothing renamed) when that much room cannot be made."""
        size = disk_bytes(file_size)
        if size > self.max_bytes:
            return False
        with self._locked() as lock_fd:
            used = _read_usage(lock_fd)
            replaced = _disk_size_of(path)
            if used is None or used - replaced + size > self.max_bytes:
                # A pass frees a sixteenth of the bound beyond what this entry needs, so that a full
                # cache scans its folder once per many entries, not once per entry.
                used = self._evict(self.max_bytes - size - self.max_bytes // 16, keep=path)
                replaced = _disk_size_of(path)
                if used - replaced + size > self.max_bytes:
                    _write_usage(lock_fd, used)
                    return False
            os.replace(part_path, path)
            _write_usage(lock_fd, used - replaced + size)
        return True

    def forget(self, path: str, fd: int) -> None:
        """Drops the entry open as ``fd``, found damaged, unless another has replaced it since."""
        with self._locked() as lock_fd:
            if not same_file(fd, path):
                return
            size = _disk_size_of(path)
            os.unlink(path)
            used = _read_usage(lock_fd)
            if used is not None:
                _write_usage(lock_fd, max(0, used - size))

    def _evict(self, target: int, keep: str) -> int:
        """Unlinks least recently used entries that no one reads until at most ``target`` bytes are
        in use (or nothing more can go); removes the `.part` files of dead processes. Returns the
        bytes in use, counted afresh."""
        entries, used = self._scan()
        entries.sort()  # oldest use first
        for _, size, path in entries:
            if used <= target:
                break
            if path != keep and _unlink_if_unread(path):
                used -= size
                self.evictions += 1
        return used

    def _scan(self) -> Tuple[List[Tuple[float, int, str]], int]:
        entries: List[Tuple[float, int, str]] = []
        used = 0
        for folder in _subfolders(self.root):
            for item in _files(folder):
                if item.name.endswith(PART_SUFFIX):
                    _unlink_if_unread(item.path)  # a dead downloader's; a live one holds its lock
                    continue
                try:
                    stat = item.stat()
                except FileNotFoundError:
                    continue
                size = disk_bytes(stat.st_size)
                entries.append((stat.st_mtime, size, item.path))
                used += size
        return entries, used


def touch(fd: int) -> None:
    """Marks an entry used now: eviction takes the least recently used first."""
    try:
        os.utime(fd)
    except OSError:
        pass  # another user's entry in a shared folder: it is still read, only its age is off


def _unlink_if_unread(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    try:
        if not same_file(fd, path):
            return False
        os.unlink(path)
        return True
    finally:
        os.close(fd)


def same_file(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (it may have been renamed or replaced)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _disk_size_of(path: str) -> int:
    try:
        return disk_bytes(os.stat(path).st_size)
    except FileNotFoundError:
        return 0


def _read_usage(lock_fd: int) -> Optional[int]:
    raw = os.pread(lock_fd, _USAGE.size, 0)
    return _USAGE.unpack(raw)[0] if len(raw) == _USAGE.size else None


def _write_usage(lock_fd: int, used: int) -> None:
    os.pwrite(lock_fd, _USAGE.pack(used), 0)


def _subfolders(root: str) -> List[str]:
    try:
        return [item.path for item in os.scandir(root) if item.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _files(folder: str) -> List[os.DirEntry]:
    try:
        return [item for item in os.scandir(folder) if item.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []
