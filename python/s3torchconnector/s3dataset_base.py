"""What S3MapDataset and S3IterableDataset share: the client, the objects, the transform, and
the ``from_objects`` / ``from_prefix`` / ``from_manifest`` constructors."""

import contextlib
from typing import Any, Callable, Iterable, Optional, Union

from ._listing.manifest import ObjectsFromManifest
from ._listing.sources import ObjectsFromUris, ObjectsUnderPrefix
from ._s3client import S3Client, S3ClientConfig
from ._s3dataset_common import S3BucketKeyData, check_transform, identity
from ._user_agent import UserAgent
from .s3exception import ObjectChangedError
from .s3reader import S3Reader, S3ReaderConstructor
from .s3reader.protocol import S3ReaderConstructorProtocol


class S3DatasetBase:
    def __init__(
        self,
        region: str,
        get_dataset_objects: Callable[[S3Client], Iterable[S3BucketKeyData]],
        endpoint: Optional[str],
        transform: Callable[[S3Reader], Any],
        s3client_config: Optional[S3ClientConfig],
        reader_constructor: Optional[S3ReaderConstructorProtocol],
        kind: str,
    ):
        check_transform(transform)
        if not callable(get_dataset_objects):
            raise TypeError(
                "get_dataset_objects must be callable (it receives an S3Client and returns the objects); "
                "or build the dataset with from_prefix or from_objects"
            )
        self._get_dataset_objects = get_dataset_objects
        self._transform = transform
        self._reader_constructor = reader_constructor or S3ReaderConstructor.default()
        reader_type = S3ReaderConstructor.get_reader_type_string(self._reader_constructor)
        self._client = S3Client(
            region,
            endpoint=endpoint,
            user_agent=UserAgent([f"md/dataset#{kind} md/reader_type#{reader_type}"]),
            s3client_config=s3client_config,
        )

    @property
    def region(self) -> str:
        """The region the dataset's client was made for."""
        return self._client.region

    @property
    def endpoint(self) -> Optional[str]:
        """The endpoint URL given to the dataset, or None when it uses the default (from the
        environment, else AWS S3)."""
        return self._client.endpoint

    def metrics(self) -> dict:
        """What this process's requests for the dataset did (see ``S3Client.metrics``). Each
        DataLoader worker reads through its own copy of the dataset and counts its own requests."""
        return self._get_client().metrics()

    @classmethod
    def from_objects(
        cls,
        object_uris: Union[str, Iterable[str]],
        *,
        region: str,
        endpoint: Optional[str] = None,
        transform: Callable[[S3Reader], Any] = identity,
        s3client_config: Optional[S3ClientConfig] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
        **options,
    ):
        """A dataset of the objects named by ``object_uris`` (``s3://bucket/key`` each).

        ``options`` are the dataset kind's own (``enable_sharding``, ``prefetch``...)."""
        return cls._from_source(
            ObjectsFromUris(object_uris), region, endpoint, transform, s3client_config, reader_constructor, options
        )

    @classmethod
    def from_prefix(
        cls,
        s3_uri: str,
        *,
        region: str,
        endpoint: Optional[str] = None,
        transform: Callable[[S3Reader], Any] = identity,
        s3client_config: Optional[S3ClientConfig] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
        **options,
    ):
        """A dataset of every object whose key starts with the prefix of ``s3_uri``.

        ``options`` are the dataset kind's own (``enable_sharding``, ``prefetch``...)."""
        return cls._from_source(
            ObjectsUnderPrefix(s3_uri), region, endpoint, transform, s3client_config, reader_constructor, options
        )

    @classmethod
    def from_manifest(
        cls,
        manifest_uri: str,
        *,
        region: str,
        endpoint: Optional[str] = None,
        transform: Callable[[S3Reader], Any] = identity,
        s3client_config: Optional[S3ClientConfig] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
        **options,
    ):
        """A dataset of the objects a manifest lists (see ``s3torchconnector.manifest``), read with
        one GET instead of listing a prefix. Each object is read at the version the manifest
        recorded: one changed since fails its read instead of giving other bytes.

        ``options`` are the dataset kind's own (``enable_sharding``, ``shuffle``...)."""
        return cls._from_source(
            ObjectsFromManifest(manifest_uri), region, endpoint, transform, s3client_config, reader_constructor, options
        )

    @classmethod
    def _from_source(cls, source, region, endpoint, transform, s3client_config, reader_constructor, options):
        return cls(
            region,
            get_dataset_objects=source,
            endpoint=endpoint,
            transform=transform,
            s3client_config=s3client_config,
            reader_constructor=reader_constructor,
            **options,
        )

    def _get_client(self) -> S3Client:
        """The client every request goes through. As in the original, a test may set ``_client``
        (to a ``MockS3Client``, say) before the first use."""
        return self._client

    def _reader(self, item: S3BucketKeyData) -> S3Reader:
        # Objects from a manifest are read at the version it recorded; listed ones at whichever is current.
        client = self._get_client()
        etag = self._pinned_etag(item)
        if etag:
            return client._get_object_version(item.bucket, item.key, etag, item.object_info, self._reader_constructor)
        return client.get_object(
            item.bucket, item.key, object_info=item.object_info, reader_constructor=self._reader_constructor
        )

    def _pinned_etag(self, item: S3BucketKeyData) -> str:
        """The version to read: a manifest's objects at the ETag it recorded, listed ones at
        whichever version is current ("")."""
        if getattr(self._get_dataset_objects, "pin_versions", False) and item.object_info is not None:
            return item.object_info.etag
        return ""

    def _sample(self, reader: S3Reader) -> Any:
        with self._reading(reader.bucket, reader.key):
            return self._transform(reader)

    @contextlib.contextmanager
    def _reading(self, bucket: str, key: str):
        """Around the reads of one object: a read refused because the object changed since its
        manifest was written says so, naming both."""
        try:
            yield
        except ObjectChangedError as error:
            # 412 from If-Match, or, from a server that ignores If-Match, a response of another ETag.
            source = self._get_dataset_objects
            if isinstance(source, ObjectsFromManifest):
                raise source.explain_changed(error, bucket, key) from error
            raise
