"""Where a node's object indexes live, and how a process finds one or builds it.

An index file is named by what it was built from (its ``identity``: a manifest's URI and ETag, say),
so every process of the node that reads the same version maps the one file, and an index of another
version is never used. The first process to need it builds it under a lock, into a file of its own
that it renames when complete; the others wait on the lock, then map the finished file.

A listing's index is private to the process that listed (``private_index``): no other process can
tell whether it would list the same. Its DataLoader workers map it; it goes when its owner lets go.

The folder is ``$S3TORCHCONNECTOR_INDEX_DIR`` when set; else ``/dev/shm/s3torchconnector-indexes``
when /dev/shm has room, else one under the temporary folder. An index that no process has open and
that nobody opened for an hour is removed when another index is built there.
"""

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

from .. import _native
from .indexed_objects import IndexedObjects

FOLDER_VARIABLE = "S3TORCHCONNECTOR_INDEX_DIR"
FOLDER_NAME = "s3torchconnector-indexes"
SHARED_MEMORY = Path("/dev/shm")
UNUSED_FOR = 3600  # seconds
SUFFIX = ".index"


def shared_index(identity: str, expected_bytes: int, build: Callable[[str], None]) -> IndexedObjects:
    """The index of ``identity``: mapped when a process of this node built it already, else built
    by ``build(path)`` (which writes a complete index at ``path``, or raises and leaves none).
    ``expected_bytes`` (about the index's size) decides whether /dev/shm has room for it."""
    folder = index_folder(expected_bytes)
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(identity.encode()).hexdigest()[:32]
    path = folder / (name + SUFFIX)
    found = _open(path)
    if found is not None:
        return found
    with _locked(folder / (name + ".lock")):
        found = _open(path)  # built by the process that held the lock before us
        if found is not None:
            return found
        remove_unused(folder)
        building = folder / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.building"
        try:
            build(str(building))
            os.rename(building, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                building.unlink()
    return IndexedObjects(str(path))


def private_index(expected_bytes: int, build: Callable[[str], None]) -> IndexedObjects:
    """An index only this process and its DataLoader workers use (a listing's: no other process
    can tell whether it would list the same): built by ``build(path)`` under a name of its own, and
    removed when this process lets go of it or exits (a worker's copy keeps its mapping)."""
    folder = index_folder(expected_bytes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"private-{os.getpid()}-{uuid.uuid4().hex}{SUFFIX}"
    try:
        build(str(path))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return IndexedObjects(str(path), owner=os.getpid())


@contextlib.contextmanager
def index_writer(path: str, listing: bool = False) -> Iterator[_native.ObjectIndexWriter]:
    """A writer of a new index file at ``path``: finished when the block ends, abandoned (the file
    removed) when it raises. ``listing``: entries keep their storage class and LastModified."""
    writer = _native.ObjectIndexWriter(path, listing)
    try:
        yield writer
        writer.finish()
    except BaseException:
        writer.abandon()
        raise


def index_folder(expected_bytes: int) -> Path:
    chosen = os.environ.get(FOLDER_VARIABLE)
    if chosen:
        return Path(chosen)
    try:
        room = os.statvfs(SHARED_MEMORY)
        if os.access(SHARED_MEMORY, os.W_OK) and room.f_bavail * room.f_frsize > 2 * expected_bytes:
            return SHARED_MEMORY / FOLDER_NAME
    except OSError:  # no /dev/shm here
        pass
    return Path(tempfile.gettempdir()) / FOLDER_NAME


def _open(path: Path):
    try:
        found = IndexedObjects(str(path))
    except FileNotFoundError:
        return None
    with contextlib.suppress(OSError):  # marks it used; another user's file may refuse
        os.utime(path)
    return found


@contextlib.contextmanager
def _locked(path: Path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a Ctrl-C while waiting raises KeyboardInterrupt (PEP 475)
        yield
    finally:
        os.close(fd)


def remove_unused(folder: Path, unused_for: float = UNUSED_FOR) -> None:
    """Removes the indexes, the files of builds that stopped and the lock files that no process
    holds and that were last opened (or written) more than ``unused_for`` seconds ago. (A lock file
    removed while a process opens it costs at most a second build of the same index.)"""
    now = time.time()
    for entry in os.scandir(folder):
        if not entry.name.endswith((SUFFIX, ".building", ".lock")):
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime < unused_for:
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # refused while a process maps it
                os.unlink(entry.path)  # under the lock: a process opening it now finds it gone, and builds
            except BlockingIOError:
                pass
            finally:
                os.close(fd)
