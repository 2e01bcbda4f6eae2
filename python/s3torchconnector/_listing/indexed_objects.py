"""A dataset's objects read from an object index file (cpp/object_index.h): a sequence of
``S3BucketKeyData``, each made when it is asked for, over a file every process on the node maps.

A process that holds one keeps the file open under a shared lock, so that no other process removes
it meanwhile (index_files.remove_unused). A copy pickled into a spawned DataLoader worker maps the
same file again; a forked one shares the parent's mapping.
"""

import contextlib
import fcntl
import os
import weakref
from collections.abc import Sequence
from typing import Iterator, Optional

from .. import _native
from .._s3bucket_key_data import S3BucketKeyData
from .._s3client import ObjectInfo


class IndexedObjects(Sequence):
    __slots__ = ("_index", "_lock", "_owner", "__weakref__")

    def __init__(self, path: str, owner: Optional[int] = None):
        """Maps the index at ``path``: FileNotFoundError when there is none, ValueError when the file
        is not a whole index. ``owner``: the process (pid) that removes the file when it lets go of
        it (a copy in a forked child does not)."""
        self._owner = owner
        self._lock = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_SH)
            self._index = _native.ObjectIndex(path)
        except BaseException:
            os.close(self._lock)
            raise
        if owner is not None:
            weakref.finalize(self, _remove, path, owner)  # also at exit

    def __del__(self):
        lock = getattr(self, "_lock", None)
        if lock is not None:
            os.close(lock)

    @property
    def path(self) -> str:
        return self._index.path

    @property
    def file_size(self) -> int:
        return self._index.file_size

    def keys_digest(self) -> str:
        """SHA-256 (hex) of the keys in order, each followed by a NUL, as computed when the index was built."""
        return self._index.keys_digest

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._entry(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("dataset index out of range")
        return self._entry(index)

    def __iter__(self) -> Iterator[S3BucketKeyData]:
        return map(self._entry, range(len(self)))

    def _entry(self, position: int) -> S3BucketKeyData:
        bucket, key, size, etag, storage_class, last_modified = self._index.entry(position)
        info = ObjectInfo(key, etag, size, last_modified, storage_class) if size >= 0 else None
        return S3BucketKeyData(bucket, key, info)

    def __reduce__(self):
        return (IndexedObjects, (self.path,))  # a copy maps the file; the owner alone removes it


def _remove(path: str, owner: int) -> None:
    if os.getpid() == owner:
        with contextlib.suppress(OSError):
            os.unlink(path)
