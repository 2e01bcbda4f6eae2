"""Every object under a prefix, in key order, whatever kind of bucket holds them."""

from typing import Iterator, Optional

from .. import _native
from .._s3client import S3Client
from .._s3client.object_info import ObjectInfo
from .index_files import index_writer, private_index
from .indexed_objects import IndexedObjects
from .pages_ahead import pages_ahead
from .parallel_listing import index_in_parallel, list_in_parallel

PAGE_SIZE = 1000  # objects in one of S3's listing pages: a pace for progress reports


def objects_in_key_order(client: S3Client, bucket: str, prefix: str, parallel: bool = False) -> Iterator[ObjectInfo]:
    """S3 lists a general-purpose bucket in key order. A caller that takes the objects as fast as they come
    (a map dataset, a shuffle, a manifest being written) sets ``parallel``: the listing then comes from many
    requests at once (list_in_parallel, which lists at most a few hundred pages ahead of the caller). One
    that reads each object before the next (a plain pass) gets the pages as they come, the next one
    requested while this one is used (pages_ahead), so that memory holds a page, not the listing. A
    directory bucket (S3 Express One Zone) lists in no particular order, not even the same one twice, so its
    listing is gathered whole and sorted: every DataLoader worker and rank, and a resumed run, must see the
    one order that sharding, the seeded shuffle and the resume state count positions in."""
    if _native.is_directory_bucket(bucket):
        pages = pages_ahead(client.list_objects(bucket, prefix))
        yield from sorted((info for page in pages for info in page.object_info), key=lambda info: info.key)
    elif parallel and _own_listing(client):
        yield from list_in_parallel(client, bucket, prefix)
    else:
        for page in pages_ahead(client.list_objects(bucket, prefix)):
            yield from page.object_info


def index_in_key_order(client: S3Client, bucket: str, prefix: str) -> Optional[IndexedObjects]:
    """The whole listing of a general-purpose bucket in key order, listed in parallel straight into an
    object index (no Python object per key: about 30-60 bytes an object instead of several hundred),
    which this process's DataLoader workers map; None where the objects must come one by one (a
    directory bucket, a client whose list_objects was replaced)."""
    if _native.is_directory_bucket(bucket) or not _own_listing(client):
        return None

    def build(path: str) -> None:
        with index_writer(path, listing=True) as writer:
            index_in_parallel(client, bucket, prefix, writer)

    return private_index(0, build)


_OWN_LIST_OBJECTS = S3Client.list_objects


def _own_listing(client: S3Client) -> bool:
    """Whether ``client`` lists as this package does: a test or a plugin that puts its own list_objects
    in place (on the class or the instance) gets it called, page by page, as before."""
    return type(client).list_objects is _OWN_LIST_OBJECTS and "list_objects" not in getattr(client, "__dict__", {})
