"""What both dataset kinds share: how a reader becomes a sample (``identity``, ``check_transform``),
and the original's listers, at the import path callers of 1.5.0 use. Where the objects come from
is ``_listing``'s."""

from typing import Any, Iterable, Iterator, Union

from ._listing.sources import ObjectsFromUris, ObjectsUnderPrefix  # here too: datasets pickled before the move
from ._s3bucket_key_data import S3BucketKeyData
from ._s3client import S3Client
from ._s3uri import parse_s3_uri  # noqa: F401  (1.5.0 defined it here: callers may import it from here)


def identity(obj: Any) -> Any:
    return obj


# The original's listers, for custom ``get_dataset_objects`` callables such as
# ``S3MapDataset(region, partial(get_objects_from_prefix, uri))``: module-level functions, so
# a partial of them pickles into spawned DataLoader workers.
def get_objects_from_uris(object_uris: Union[str, Iterable[str]], client: S3Client) -> Iterator[S3BucketKeyData]:
    return ObjectsFromUris(object_uris)(client)


def get_objects_from_prefix(s3_uri: str, client: S3Client) -> Iterator[S3BucketKeyData]:
    return iter(ObjectsUnderPrefix(s3_uri)(client))


def check_transform(transform) -> None:
    if not callable(transform):
        raise TypeError(f"transform must be callable (it receives an S3Reader), got {type(transform).__name__}")
