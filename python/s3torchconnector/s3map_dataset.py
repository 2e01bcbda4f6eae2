"""S3MapDataset: random access to the objects under a prefix (or a list of URIs)."""

from typing import Any, Callable, Iterable, List, Optional, Sequence, Union

import torch.utils.data

from ._s3client import S3Client, S3ClientConfig
from ._s3dataset_common import (
    S3BucketKeyData,
    check_transform,
    identity,
    ObjectsFromUris,
    ObjectsUnderPrefix,
)
from ._user_agent import UserAgent
from .s3reader import S3Reader
from .s3reader.protocol import S3ReaderConstructorProtocol


class S3MapDataset(torch.utils.data.Dataset):
    """``dataset[i]`` is ``transform(reader of the i-th object)``.

    Objects are listed once, at the first ``len()`` or index, not at construction. The list
    travels with the dataset into DataLoader workers, so they do not list again. A DataLoader
    batch is fetched concurrently through ``__getitems__``.
    """

    def __init__(
        self,
        region: str,
        *,
        get_dataset_objects: Callable[[S3Client], Iterable[S3BucketKeyData]],
        endpoint: Optional[str] = None,
        transform: Callable[[S3Reader], Any] = identity,
        s3client_config: Optional[S3ClientConfig] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
    ):
        check_transform(transform)
        self._get_dataset_objects = get_dataset_objects
        self._transform = transform
        self._reader_constructor = reader_constructor
        self._client = S3Client(
            region, endpoint=endpoint, user_agent=UserAgent(["map"]), s3client_config=s3client_config
        )
        self._objects: Optional[List[S3BucketKeyData]] = None

    @property
    def region(self) -> str:
        return self._client.region

    @property
    def endpoint(self) -> Optional[str]:
        return self._client.endpoint

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
    ) -> "S3MapDataset":
        """A dataset of the objects named by ``object_uris`` (``s3://bucket/key`` each)."""
        return cls(
            region,
            get_dataset_objects=ObjectsFromUris(object_uris),
            endpoint=endpoint,
            transform=transform,
            s3client_config=s3client_config,
            reader_constructor=reader_constructor,
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
    ) -> "S3MapDataset":
        """A dataset of every object whose key starts with the prefix of ``s3_uri``."""
        return cls(
            region,
            get_dataset_objects=ObjectsUnderPrefix(s3_uri),
            endpoint=endpoint,
            transform=transform,
            s3client_config=s3client_config,
            reader_constructor=reader_constructor,
        )

    @property
    def _dataset_objects(self) -> List[S3BucketKeyData]:
        if self._objects is None:
            self._objects = list(self._get_dataset_objects(self._client))
        return self._objects

    def __len__(self) -> int:
        return len(self._dataset_objects)

    def _reader(self, index: int) -> S3Reader:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"dataset indices must be integers, got {type(index).__name__}")
        bucket, key, object_info = self._dataset_objects[index]
        return self._client.get_object(
            bucket, key, object_info=object_info, reader_constructor=self._reader_constructor
        )

    def __getitem__(self, index: int) -> Any:
        return self._transform(self._reader(index))

    def __getitems__(self, indices: Sequence[int]) -> List[Any]:
        # Start every GET of the batch before the first one is read: they run concurrently.
        readers = [self._reader(i) for i in indices]
        for reader in readers:
            reader.prefetch()
        return [self._transform(reader) for reader in readers]
