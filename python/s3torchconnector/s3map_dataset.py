"""S3MapDataset: random access to the objects under a prefix (or a list of URIs)."""

import operator
from typing import Any, Callable, Iterable, List, Optional, Sequence

import torch.utils.data

from ._listing.indexed_objects import IndexedObjects
from ._listing.sources import dataset_objects
from ._s3client import S3Client, S3ClientConfig
from ._s3dataset_common import S3BucketKeyData, identity
from .s3dataset_base import S3DatasetBase
from .s3reader import S3Reader
from .s3reader.protocol import S3ReaderConstructorProtocol


class S3MapDataset(S3DatasetBase, torch.utils.data.Dataset):
    """``dataset[i]`` is ``transform(reader of the i-th object)``.

    Objects are listed once, at the first ``len()`` or index, not at construction. The list
    travels with the dataset into DataLoader workers, so they do not list again. A DataLoader
    batch is fetched concurrently through ``__getitems__``. Make one with ``from_prefix`` or
    ``from_objects``.
    """

    def __init__(
        self,
        region: str,
        get_dataset_objects: Callable[[S3Client], Iterable[S3BucketKeyData]],
        endpoint: Optional[str] = None,
        transform: Callable[[S3Reader], Any] = identity,
        s3client_config: Optional[S3ClientConfig] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
    ):
        super().__init__(
            region,
            get_dataset_objects=get_dataset_objects,
            endpoint=endpoint,
            transform=transform,
            s3client_config=s3client_config,
            reader_constructor=reader_constructor,
            kind="map",
        )
        self._objects: Optional[Sequence[S3BucketKeyData]] = None

    @property
    def _dataset_objects(self) -> Sequence[S3BucketKeyData]:
        if self._objects is None:
            objects = dataset_objects(self._get_dataset_objects, self._get_client(), whole=True)
            # A manifest's or a listing's objects are in an index file already, each entry made when indexed.
            self._objects = objects if isinstance(objects, IndexedObjects) else list(objects)
        return self._objects

    def __len__(self) -> int:
        return len(self._dataset_objects)

    def _get_object(self, i: int) -> S3Reader:
        try:
            i = operator.index(i)  # ints, NumPy integers and 0-d tensors, as a list takes them
        except TypeError:
            raise TypeError(f"dataset indices must be integers, got {type(i).__name__}") from None
        return self._reader(self._dataset_objects[i])

    def __getitem__(self, i: int) -> Any:
        return self._sample(self._get_object(i))

    def __getitems__(self, indices: Sequence[int]) -> List[Any]:
        # Start every GET of the batch before the first one is read: they run concurrently.
        readers = [self._get_object(i) for i in indices]
        for reader in readers:
            reader.prefetch()
        return [self._sample(reader) for reader in readers]
