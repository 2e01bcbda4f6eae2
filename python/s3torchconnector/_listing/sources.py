"""A dataset's objects named by a prefix (``ObjectsUnderPrefix``) or by their URIs (``ObjectsFromUris``);
a manifest's are ``manifest.ObjectsFromManifest``. Each is called with the dataset's client and returns
the objects; the URIs are checked when it is made, S3 is asked when it is called.
"""

from typing import Iterable, Iterator, Union

from .._s3bucket_key_data import S3BucketKeyData
from .._s3client import S3Client
from .._s3uri import parse_s3_uri
from .key_order import index_in_key_order, objects_in_key_order


class ObjectsUnderPrefix:
    """Lists every object under ``s3_uri``, in key order; the URI is checked now, S3 is asked when called.

    A plain class (not a closure) so that datasets pickle into spawned DataLoader workers.
    """

    def __init__(self, s3_uri: str):
        self.bucket, self.prefix = parse_s3_uri(s3_uri)

    def __call__(self, client: S3Client, whole: bool = False) -> Iterable[S3BucketKeyData]:
        """``whole``: the caller takes the whole listing before it starts, which is then listed by many
        requests at once into an object index (key_order.index_in_key_order) where it can be."""
        if whole:
            index = index_in_key_order(client, self.bucket, self.prefix)
            if index is not None:
                return index
        return self._listed(client, whole)

    def _listed(self, client: S3Client, whole: bool) -> Iterator[S3BucketKeyData]:
        for info in objects_in_key_order(client, self.bucket, self.prefix, parallel=whole):
            yield S3BucketKeyData(self.bucket, info.key, info)


def dataset_objects(source, client: S3Client, whole: bool) -> Iterable[S3BucketKeyData]:
    """A dataset's objects from its ``get_dataset_objects``: ours, or a callable of the original's
    kind, which takes the client alone."""
    return source(client, whole) if isinstance(source, ObjectsUnderPrefix) else source(client)


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
