"""The shape of a reader constructor: called by S3Client with the object and how to fetch it."""

from typing import Callable, Optional, Protocol

from .s3reader import S3Reader


class GetStreamFunction(Protocol):
    def __call__(self, start: Optional[int] = None, end: Optional[int] = None): ...


class S3ReaderConstructorProtocol(Protocol):
    def __call__(
        self,
        bucket: str,
        key: str,
        get_object_info: Callable[[], object],
        get_stream: GetStreamFunction,
    ) -> S3Reader: ...
