"""A dataset's objects named by a prefix (``ObjectsUnderPrefix``) or by their URIs (``ObjectsFromUris``);
a manifest's are ``manifest.ObjectsFromManifest``. Each is called with the dataset's client and returns
the objects; the URIs are checked when it is made, S3 is asked when it is called.
"""

from typing import Iterable, Iterator, Union

from .._s3bucket_key_data import S3BucketKeyData
from .._s3client import S3Client
from .._s3uri import parse_s3_uri
from .key_order import objects_in_key_order


class ObjectsUnderPrefix:
    """Lists every object under ``s3_uri``, in key order; the URI is checked now, S3 is asked when called.

    A plain class (not a closure) so that datasets pickle into spawned DataLoader workers.
    """

    def __init__(self, s3_uri: str):
        self.bucket, self.prefix = parse_s3_uri(s3_uri)

    def __call__(self, client: S3Client) -> Iterator[S3BucketKeyData]:
        for info in objects_in_key_order(client, self.bucket, self.prefix):
            yield S3BucketKeyData(self.bucket, info.key, info)


class ObjectsFromUris:
    """The objects named by ``object_uris``, each URI checked now."""

    def __init__(self, object_uris: Union[str, Iterable[str]]):
        if isinstance(object_uris, str):
            object_uris = [object_uris]
        self.objects = []
        for uri in object_uris:
            bucket, key = parse_s3_uri(uri)
            if not key:
                raise ValueError(f"{uri!r} names a bucket, not an object: use 's3://bucket/key'")
            self.objects.append(S3BucketKeyData(bucket, key))

    def __call__(self, client: S3Client) -> Iterator[S3BucketKeyData]:
        return iter(self.objects)
