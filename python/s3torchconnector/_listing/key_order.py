"""Every object under a prefix, in key order, whatever kind of bucket holds them."""

from typing import Iterator

from .. import _native
from .._s3client import S3Client
from .._s3client.object_info import ObjectInfo
from .pages_ahead import pages_ahead

PAGE_SIZE = 1000  # objects in one of S3's listing pages: a pace for progress reports


def objects_in_key_order(client: S3Client, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
    """S3 lists a general-purpose bucket in key order, and its pages stream as they arrive. A directory bucket
    (S3 Express One Zone) lists in no particular order, not even the same one twice, so its listing is gathered
    whole and sorted: every DataLoader worker and rank, and a resumed run, must see the one order that sharding,
    the seeded shuffle and the resume state count positions in. Either way the next page is requested while
    the objects of this one are used (pages_ahead)."""
    pages = pages_ahead(client.list_objects(bucket, prefix))
    if not _native.is_directory_bucket(bucket):
        for page in pages:
            yield from page.object_info
        return
    yield from sorted((info for page in pages for info in page.object_info), key=lambda info: info.key)
