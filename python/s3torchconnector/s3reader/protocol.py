"""The shapes of reader constructors: called by S3Client with the object and how to fetch it."""

import os
from typing import Callable, Dict, List, Optional, Protocol, Union, runtime_checkable

from .dcp_optimized import ItemRange
from .s3reader import S3Reader


class GetStreamCallable(Protocol):
    """Starts a GET of bytes [start, end) of the object (all of it when both are None)."""

    def __call__(self, start: Optional[int] = None, end: Optional[int] = None): ...


@runtime_checkable
class S3ReaderConstructorProtocol(Protocol):
    """What ``reader_constructor=`` takes: a callable that S3Client calls for each object it opens,
    with the object's ``bucket`` and ``key``, ``get_object_info`` (returns its HeadObjectResult:
    size, ETag..., with a HEAD request when not already known) and ``get_stream`` (starts a GET, see
    GetStreamCallable), and that returns the S3Reader to read the object with. The constructors
    S3ReaderConstructor makes are such callables; write your own to read objects another way."""

    def __call__(
        self,
        bucket: str,
        key: str,
        get_object_info: Callable[[], object],
        get_stream: GetStreamCallable,
    ) -> S3Reader: ...


@runtime_checkable
class DCPS3ReaderConstructorProtocol(S3ReaderConstructorProtocol, Protocol):
    """A constructor a DCP load tells which byte ranges of each file its plan reads."""

    _item_ranges_by_file: Dict[str, List[ItemRange]]

    def set_item_ranges_by_file(self, plan_items: list, storage_data: dict, base_path: Union[str, os.PathLike]) -> None:
        """Registers the byte ranges the load plan reads: ``plan_items`` are its ``ReadItem``s,
        ``storage_data`` says where each lies (file, offset, length), and ``base_path`` is the
        checkpoint's ``s3://`` location. S3StorageReader calls it before reading the data files."""
