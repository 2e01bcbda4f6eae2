"""PyTorch Distributed Checkpoint (DCP) on S3: a FileSystemBase over S3Client, and the storage
writer and reader that ``torch.distributed.checkpoint.save`` / ``load`` take."""

import dataclasses
import io
import logging
import os
import pickle
from contextlib import contextmanager
from typing import Generator, List, Optional, Tuple, Union

import torch
from torch.distributed.checkpoint.filesystem import FileSystemBase, FileSystemReader, FileSystemWriter
from torch.distributed.checkpoint.metadata import Metadata
from torch.distributed.checkpoint.planner import LoadPlan, LoadPlanner, SavePlan, SavePlanner
from torch.distributed.checkpoint.storage import WriteResult
from torch.futures import Future

from .._s3client import S3Client, S3ClientConfig
from .._s3uri import parse_s3_uri
from .._user_agent import UserAgent
from ..s3exception import S3Exception
from ..s3reader import S3ReaderConstructor
from ..s3reader.dcp_optimized import DCPOptimizedConstructor
from ..s3reader.protocol import S3ReaderConstructorProtocol
from .s3_prefix_strategy import DefaultPrefixStrategy, S3PrefixStrategyBase

log = logging.getLogger(__name__)

_METADATA_FILE = ".metadata"
_DELETE_ATTEMPTS = 3

PathLike = Union[str, "os.PathLike[str]"]


def _to_str(path: PathLike) -> str:
    if isinstance(path, str):
        return path
    if isinstance(path, os.PathLike):
        return os.fspath(path)
    raise TypeError(f"a checkpoint path must be an 's3://bucket/prefix' string, got {type(path).__name__}")


def _is_not_found(error: S3Exception) -> bool:
    return getattr(error, "status", 0) == 404 or getattr(error, "code", "") in ("NoSuchKey", "NotFound")


class S3FileSystem(FileSystemBase):
    """The file system DCP's FileSystemWriter and FileSystemReader work through, on S3.

    Paths are ``s3://bucket/key`` URIs; directories are key prefixes (``mkdir`` does nothing).
    Written objects appear whole when their stream is closed, never half-written.

    Args:
        region: the bucket's region.
        s3_client: an S3Client to use instead of making one.
        s3client_config: settings of the client made when ``s3_client`` is not given.
        reader_constructor: how objects are read (``S3ReaderConstructor.sequential()`` by default).
        endpoint: a custom S3 endpoint URL for the client made here.
    """

    def __init__(
        self,
        region: str,
        s3_client: Optional[S3Client] = None,
        s3client_config: Optional[S3ClientConfig] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
        *,
        endpoint: Optional[str] = None,
    ) -> None:
        if s3_client is not None and not isinstance(s3_client, S3Client):
            raise TypeError(f"s3_client must be an S3Client, got {type(s3_client).__name__}")
        self._path: PathLike = ""
        self._last_write_error: Optional[BaseException] = None
        self._reader_constructor = reader_constructor or S3ReaderConstructor.default()
        if s3_client is None:
            reader_type = S3ReaderConstructor.get_reader_type_string(self._reader_constructor)
            user_agent = UserAgent(["dcp", torch.__version__, f"md/reader_type#{reader_type}"])
            s3_client = S3Client(region, endpoint=endpoint, user_agent=user_agent, s3client_config=s3client_config)
        self._client = s3_client

    @property
    def s3_client(self) -> S3Client:
        """The S3Client every request of this file system goes through."""
        return self._client

    @property
    def reader_constructor(self) -> S3ReaderConstructorProtocol:
        """How ``create_stream(path, "rb")`` reads objects."""
        return self._reader_constructor

    @contextmanager
    def create_stream(self, path: PathLike, mode: str) -> Generator[io.IOBase, None, None]:
        """``"wb"``: an S3Writer whose object appears when the block ends without an exception
        (an exception cancels the upload). ``"rb"``: an S3Reader."""
        bucket, key = parse_s3_uri(_to_str(path))
        if mode == "wb":
            log.debug("create_stream wb s3://%s/%s", bucket, key)
            try:
                with self._client.put_object(bucket, key) as stream:
                    yield stream
            except BaseException as error:
                self._last_write_error = error  # writer threads may lose it: see S3StorageWriter
                raise
        elif mode == "rb":
            log.debug("create_stream rb s3://%s/%s", bucket, key)
            with self._client.get_object(bucket, key, reader_constructor=self._reader_constructor) as stream:
                yield stream
        else:
            raise ValueError(f"mode must be 'rb' (read) or 'wb' (write), got {mode!r}")

    def concat_path(self, path: PathLike, suffix: str) -> str:
        """``suffix`` under the prefix ``path``, joined by exactly one ``/``:
        ``concat_path("s3://b/ckpt", "__0_0.distcp")`` is ``"s3://b/ckpt/__0_0.distcp"``. A path that
        is not a string or os.PathLike raises TypeError."""
        base = _to_str(path)
        if not base.endswith("/"):
            base += "/"
        return base + suffix.lstrip("/")

    def init_path(self, path: PathLike) -> str:
        """Takes ``path`` as the checkpoint's location and returns it as a string. Sends no request;
        a path that is not an ``s3://bucket/...`` URI raises ValueError (TypeError for other types)."""
        path_str = _to_str(path)
        parse_s3_uri(path_str)  # fail early on a malformed URI
        self._path = path_str
        return path_str

    def rename(self, old_path: PathLike, new_path: PathLike) -> None:
        """Copies the object to ``new_path``, then deletes the original (same bucket only)."""
        old_bucket, old_key = parse_s3_uri(_to_str(old_path))
        new_bucket, new_key = parse_s3_uri(_to_str(new_path))
        if old_bucket != new_bucket:
            raise ValueError(f"rename within one bucket only: {old_bucket!r} and {new_bucket!r} differ")
        self._client.copy_object(old_bucket, old_key, new_bucket, new_key)
        for attempt in range(1, _DELETE_ATTEMPTS + 1):
            try:
                self._client.delete_object(old_bucket, old_key)
                return
            except S3Exception as error:
                if attempt == _DELETE_ATTEMPTS:
                    raise
                log.warning("rename: deleting s3://%s/%s failed (%s), retrying", old_bucket, old_key, error)

    def mkdir(self, path: PathLike) -> None:
        """Nothing to do: S3 has no directories."""

    def exists(self, path: PathLike) -> bool:
        """Whether the object ``path`` exists (one HEAD request). Errors other than "not found", such
        as AccessDeniedError, are raised rather than taken for a missing object."""
        bucket, key = parse_s3_uri(_to_str(path))
        try:
            self._client.head_object(bucket, key)
        except S3Exception as error:
            if _is_not_found(error):
                return False
            raise
        return True

    def rm_file(self, path: PathLike) -> None:
        """Deletes the object ``path``; a missing object is not an error. Other failures raise
        S3Exception."""
        bucket, key = parse_s3_uri(_to_str(path))
        try:
            self._client.delete_object(bucket, key)
        except S3Exception as error:
            if not _is_not_found(error):
                raise

    def ls(self, path: PathLike) -> List[str]:
        """URIs of every object under the prefix ``path``."""
        bucket, prefix = parse_s3_uri(_to_str(path))
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return [
            f"s3://{bucket}/{info.key}"
            for page in self._client.list_objects(bucket, prefix)
            for info in page.object_info
        ]

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: PathLike) -> bool:
        """Whether ``checkpoint_id`` is an ``s3://bucket/prefix`` URI this file system can use (DCP asks
        to choose a storage for a ``checkpoint_id``). Sends no request."""
        try:
            parse_s3_uri(_to_str(checkpoint_id))
        except (TypeError, ValueError):
            return False
        return True


@dataclasses.dataclass
class StorageMetadata:
    """What the coordinator tells each rank about where to write: its file prefix."""

    prefix: str


class S3StorageWriter(FileSystemWriter):
    """A DCP StorageWriter that writes a checkpoint under an ``s3://bucket/prefix`` path.

    Each rank writes its data files (``<prefix><n>.distcp``, named by ``prefix_strategy``); the
    coordinator then writes ``.metadata`` in one atomic PUT, only after every rank's files are
    complete, and removes a previous ``.metadata`` at the path before any data file is written, so
    a save that was interrupted is never taken for a complete checkpoint.

    Args:
        region: the bucket's region.
        path: the checkpoint's ``s3://bucket/prefix``.
        s3client_config: settings of the S3 client.
        prefix_strategy: where each rank's files go (``DefaultPrefixStrategy()``: ``__<rank>_``).
        thread_count: upload threads per rank (files per rank, with ``single_file_per_rank``).
        endpoint: a custom S3 endpoint URL.
        kwargs: passed on to ``torch.distributed.checkpoint.FileSystemWriter``
            (``single_file_per_rank``, ``per_thread_copy_ahead``, ``overwrite``...).
            ``sync_files`` is ignored: an uploaded object is durable when its upload completes.
    """

    def __init__(
        self,
        region: str,
        path: str,
        s3client_config: Optional[S3ClientConfig] = None,
        prefix_strategy: Optional[S3PrefixStrategyBase] = None,
        thread_count: int = 1,
        *,
        endpoint: Optional[str] = None,
        **kwargs,
    ) -> None:
        """Takes the arguments described above. Checked before any request: a ``prefix_strategy`` that
        is not callable raises TypeError, a ``thread_count`` that is not a positive int ValueError, and
        a ``path`` that is not an ``s3://bucket/prefix`` URI ValueError (TypeError when not a string)."""
        if prefix_strategy is not None and not callable(prefix_strategy):
            raise TypeError(f"prefix_strategy must be an S3PrefixStrategyBase, got {type(prefix_strategy).__name__}")
        if isinstance(thread_count, bool) or not isinstance(thread_count, int) or thread_count < 1:
            raise ValueError(f"thread_count must be a positive int, got {thread_count!r}")
        kwargs.pop("sync_files", None)
        super().__init__(path=_to_str(path), sync_files=False, thread_count=thread_count, **kwargs)
        self.fs = S3FileSystem(region, s3client_config=s3client_config, endpoint=endpoint)  # type: ignore[assignment]
        self.path = self.fs.init_path(path)
        self.prefix_strategy = prefix_strategy or DefaultPrefixStrategy()

    def _collective(self) -> bool:
        return getattr(self, "use_collectives", True) or getattr(self, "rank", None) is None

    def prepare_local_plan(self, plan: SavePlan) -> SavePlan:
        """DCP's planning step on each rank. Without collectives (``use_collectives=False``) each rank
        also removes its own previous ``__<rank>.metadata`` and names its data files here, by the
        prefix strategy."""
        plan = super().prepare_local_plan(plan)
        if not self._collective():
            # Each rank writes its own metadata file: it alone can clear the old one.
            self._remove_metadata(self.rank)
            plan = dataclasses.replace(plan, storage_data=StorageMetadata(self.prefix_strategy(self.rank)))
        return plan

    def prepare_global_plan(self, plans: List[SavePlan]) -> List[SavePlan]:
        """DCP's planning step on the coordinator: removes a previous ``.metadata`` at the path (so an
        interrupted save is never taken for a complete one) and gives each rank's plan the file prefix
        its rank gets from the prefix strategy."""
        # Runs on the coordinator after every rank has planned and before any rank writes data.
        self._remove_metadata(None)
        # Without collectives each rank passes only its own plan, already named in prepare_local_plan:
        # renaming it by its index here would give every rank rank 0's file names.
        return [
            plan
            if plan.storage_data is not None
            else dataclasses.replace(plan, storage_data=StorageMetadata(self.prefix_strategy(rank)))
            for rank, plan in enumerate(plans)
        ]

    def write_data(self, plan: SavePlan, planner: SavePlanner) -> Future:
        """Uploads this rank's data files (``thread_count`` at a time) and returns DCP's future of the
        write results, already complete. A file whose upload failed fails the save with that upload's
        S3Exception (or a RuntimeError counting the items not written), before ``.metadata`` is written."""
        self.fs._last_write_error = None
        future = super().write_data(plan, planner)
        # FileSystemWriter's extra writer threads (thread_count > 1) drop their exceptions: a file
        # whose upload failed is only missing from the results. Fail the save rather than let
        # finish() write a .metadata that names data never written, with the upload's own error
        # (an S3Exception naming the object) as a failure in this thread would have raised it.
        written = {result.index for result in future.wait()}
        missing = [item.index for item in plan.items if item.index not in written]
        if missing:
            error = self.fs._last_write_error
            if error is not None:
                raise error
            raise RuntimeError(f"{len(missing)} of {len(plan.items)} checkpoint items were not written to {self.path}")
        return future

    def _metadata_path_for(self, rank: Optional[int]) -> str:
        name = _METADATA_FILE if rank is None else f"__{rank}{_METADATA_FILE}"
        return self.fs.concat_path(self.path, name)

    def _remove_metadata(self, rank: Optional[int]) -> None:
        path = self._metadata_path_for(rank)
        if self.fs.exists(path):
            log.debug("removing the previous checkpoint's %s before writing", path)
            self.fs.rm_file(path)

    def finish(self, metadata: Metadata, results: List[List[WriteResult]]) -> None:
        """Writes ``.metadata``: called once every rank's data files are complete."""
        try:
            from torch.distributed.checkpoint.filesystem import CURRENT_DCP_VERSION

            metadata.version = CURRENT_DCP_VERSION
        except ImportError:  # older torch: no version field
            pass
        storage_md = {}
        for write_results in results:
            storage_md.update({result.index: result.storage_data for result in write_results})
        metadata.storage_data = storage_md
        storage_meta = getattr(self, "storage_meta", None)
        if callable(storage_meta):
            metadata.storage_meta = storage_meta()
        rank = None if self._collective() else self.rank
        # One PUT: the object appears complete or not at all, so no temporary file and rename.
        with self.fs.create_stream(self._metadata_path_for(rank), "wb") as metadata_file:
            pickle.dump(metadata, metadata_file)

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: PathLike) -> bool:
        """Whether ``checkpoint_id`` is an ``s3://bucket/prefix`` URI (see S3FileSystem)."""
        return S3FileSystem.validate_checkpoint_id(checkpoint_id)


class S3StorageReader(FileSystemReader):
    """A DCP StorageReader of a checkpoint under an ``s3://bucket/prefix`` path.

    With the default ``S3ReaderConstructor.dcp_optimized()``, each data file is read by fetching,
    in offset order, only the byte ranges the load plan needs (nearby ranges share a request):
    loading part of a checkpoint downloads only that part.

    Args:
        region: the bucket's region.
        path: the checkpoint's ``s3://bucket/prefix``.
        s3client_config: settings of the S3 client.
        reader_constructor: how objects are read (``S3ReaderConstructor.dcp_optimized()`` by
            default; ``sequential()`` downloads each data file whole).
        endpoint: a custom S3 endpoint URL.
    """

    def __init__(
        self,
        region: str,
        path: PathLike,
        s3client_config: Optional[S3ClientConfig] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
        *,
        endpoint: Optional[str] = None,
    ) -> None:
        super().__init__(_to_str(path))
        if reader_constructor is None:
            reader_constructor = S3ReaderConstructor.dcp_optimized()
        self.fs = S3FileSystem(  # type: ignore[assignment]
            region, s3client_config=s3client_config, reader_constructor=reader_constructor, endpoint=endpoint
        )
        self.path = self.fs.init_path(path)
        self.sync_files = False

    @property
    def reader_constructor(self) -> S3ReaderConstructorProtocol:
        """How the checkpoint's objects are read (``S3ReaderConstructor.dcp_optimized()`` by default)."""
        return self.fs.reader_constructor

    def _item_location(self, read_item) -> Tuple[str, int, int]:
        info = self.storage_data[read_item.storage_index]
        return info.relative_path, info.offset, info.length

    def _in_file_order(self, plan: LoadPlan) -> LoadPlan:
        """The plan's items sorted by file and offset, so each file is read front to back."""
        items = sorted(plan.items, key=lambda item: self._item_location(item)[:2])
        return dataclasses.replace(plan, items=items)

    def prepare_local_plan(self, plan: LoadPlan) -> LoadPlan:
        """DCP's planning step on each rank: the plan's items sorted by file and offset, so that each
        data file is read front to back."""
        return self._in_file_order(super().prepare_local_plan(plan))

    def read_data(self, plan: LoadPlan, planner: LoadPlanner) -> Future:
        """Reads the plan's items from the data files and hands them to ``planner``. With the
        dcp_optimized reader, each file's reader is first told the byte ranges the plan reads, so only
        those are fetched. A failed read raises its S3Exception."""
        plan = self._in_file_order(plan)
        constructor = self.fs.reader_constructor
        if not isinstance(constructor, DCPOptimizedConstructor):
            return super().read_data(plan, planner)
        constructor.set_item_ranges_by_file(plan.items, self.storage_data, self.path)
        try:
            return super().read_data(plan, planner)
        finally:
            constructor.clear_file_ranges()

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: PathLike) -> bool:
        """Whether ``checkpoint_id`` is an ``s3://bucket/prefix`` URI (see S3FileSystem)."""
        return S3FileSystem.validate_checkpoint_id(checkpoint_id)
