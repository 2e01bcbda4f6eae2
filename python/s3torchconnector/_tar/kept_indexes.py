"""Indexes made by reading a tar shard, kept on the node: another process (a DataLoader worker
started later, another rank, the next run) finds one instead of reading the shard again.

Each is kept in the sidecar's format (``index``), named by the SHA-256 of the endpoint, bucket, key
and ETag of the shard version it describes: in the node cache when it is on (beside the objects'
entries, within its bound, evicted like them), else as a file in the folder of the node's object
indexes (``_listing.index_files``; written whole, then renamed into place; removed once unused for
an hour, like those). Either is checked like a sidecar when read: a damaged one is not used.

The first process to index a shard holds a lock (a file in that folder) while it reads it; another
process that wants the same index indexes other shards meanwhile, then takes that one's result.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import Iterator, Optional

from .._listing.index_files import SUFFIX, index_folder
from .._s3client import S3Client
from .index import DamagedIndex, ShardIndex, parse_index

log = logging.getLogger(__name__)

_EXPECTED_BYTES = 1 << 20  # about an index's size, for the choice of folder
_FILE_SUFFIX = ".tar" + SUFFIX  # ends as the object indexes do: removed like them when unused
_LOCK_SUFFIX = ".tar-index.lock"


class KeptIndexes:
    """The node's indexes of the shards of one client's endpoint."""

    def __init__(self, client: S3Client):
        self._endpoint = client._endpoint_name()
        self._cache = client._cache()
        self._folder = index_folder(_EXPECTED_BYTES)

    def name(self, bucket: str, key: str, etag: str) -> str:
        """The name of the index of this version of the shard (the key last: it may hold newlines)."""
        identity = f"tar-index\n{self._endpoint}\n{bucket}\n{etag}\n{key}"
        return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()

    def find(self, name: str) -> Optional[ShardIndex]:
        """The index kept under ``name``, checked; None when there is none (or it is damaged)."""
        if self._cache is not None:
            data = self._cache.read_derived(name)
        else:
            data = _read_file(self._folder / (name + _FILE_SUFFIX))
        if data is None:
            return None
        try:
            return parse_index(data)
        except DamagedIndex as error:
            log.warning("a tar shard's index kept on this node is damaged (%s): the shard is indexed again", error)
            return None

    def keep(self, name: str, index: ShardIndex) -> None:
        """Keeps ``index`` under ``name``; a disk that refuses costs only a later process's reading."""
        data = index.to_json()
        if self._cache is not None and self._cache.keep_derived(name, data):
            return
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            path = self._folder / (name + _FILE_SUFFIX)
            building = self._folder / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.building"
            try:
                building.write_bytes(data)
                os.replace(building, path)  # whole or not at all, for a process reading it meanwhile
            finally:
                with contextlib.suppress(FileNotFoundError):
                    building.unlink()
        except OSError as error:
            log.debug("a tar shard's index could not be kept in %s: %s", self._folder, error)

    @contextlib.contextmanager
    def building(self, name: str, wait: bool) -> Iterator[bool]:
        """Holds the lock of the index ``name`` for the block, and yields True; yields False at once
        when another process holds it and ``wait`` is False. A folder that cannot hold the lock
        file (read-only, say) yields True: the shard is then read without a lock."""
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._folder / (name + _LOCK_SUFFIX), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            yield True
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)


def _read_file(path: Path) -> Optional[bytes]:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # in use: not removed as unused
    return data
