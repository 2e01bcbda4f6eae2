"""What both dataset kinds share: the objects they read, and how a reader becomes a sample."""

from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Union

from ._s3client import S3Client
from ._s3client.object_info import ObjectInfo
from ._s3uri import parse_s3_uri


class S3BucketKeyData(NamedTuple):
    bucket: str
    key: str
    object_info: Optional[ObjectInfo] = None


def identity(obj: Any) -> Any:
    return obj


def objects_under_prefix(s3_uri: str) -> Callable[[S3Client], Iterator[S3BucketKeyData]]:
    """A lister of every object under ``s3_uri``; the URI is checked now, S3 is asked later."""
    bucket, prefix = parse_s3_uri(s3_uri)

    def list_objects(client: S3Client) -> Iterator[S3BucketKeyData]:
        for page in client.list_objects(bucket, prefix):
            for info in page.object_info:
                yield S3BucketKeyData(bucket, info.key, info)

    return list_objects


def objects_from_uris(object_uris: Union[str, Iterable[str]]) -> Callable[[S3Client], Iterator[S3BucketKeyData]]:
    """A lister of the given object URIs, each checked now."""
    if isinstance(object_uris, str):
        object_uris = [object_uris]
    objects = []
    for uri in object_uris:
        bucket, key = parse_s3_uri(uri)
        if not key:
            raise ValueError(f"{uri!r} names a bucket, not an object: use 's3://bucket/key'")
        objects.append(S3BucketKeyData(bucket, key))

    def list_objects(client: S3Client) -> Iterator[S3BucketKeyData]:
        return iter(objects)

    return list_objects


def check_transform(transform) -> None:
    if not callable(transform):
        raise TypeError(f"transform must be callable (it receives an S3Reader), got {type(transform).__name__}")
