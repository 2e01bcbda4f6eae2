"""S3MapDataset: random access to the objects under a prefix (or a list of URIs), or to the
samples of tar shards."""

import operator
from typing import Any, Callable, Iterable, List, Optional, Sequence

import torch.utils.data

from ._listing.indexed_objects import IndexedObjects
from ._listing.sources import ObjectsUnderPrefix, dataset_objects
from ._s3client import S3Client, S3ClientConfig
from ._s3dataset_common import S3BucketKeyData, identity
from ._tar.random_access import PendingSample, ShardSamples, index_shards
from .s3dataset_base import S3DatasetBase
from .s3iterable_dataset import SHARD_FORMATS
from .s3reader import S3Reader
from .s3reader.protocol import S3ReaderConstructorProtocol


class S3MapDataset(S3DatasetBase, torch.utils.data.Dataset):
    """``dataset[i]`` is ``transform(reader of the i-th object)``.

    Objects are listed once, at the first ``len()`` or index, not at construction. The list
    travels with the dataset into DataLoader workers, so they do not list again. A DataLoader
    batch is fetched concurrently through ``__getitems__``. Make one with ``from_prefix``,
    ``from_objects`` or ``from_manifest``.

    With ``shard_format="tar"`` each object is a tar shard in WebDataset's layout and
    ``dataset[i]`` is ``transform(the i-th sample of all the shards)``: the dict that
    ``S3IterableDataset(shard_format="tar")`` yields for it, read with one ranged GET of its bytes.
    ``len()`` counts the samples. Each shard's index of its samples is its sidecar object
    (``<shard key>.index.json``, which ShardWriter writes), or, for a shard without a usable one,
    made by reading the shard once and kept on the node; the indexes travel with the dataset into
    DataLoader workers. Compressed shards cannot be read at random and are refused.
    """

    def __init__(
        self,
        region: str,
        get_dataset_objects: Callable[[S3Client], Iterable[S3BucketKeyData]],
        endpoint: Optional[str] = None,
        transform: Callable[[S3Reader], Any] = identity,
        s3client_config: Optional[S3ClientConfig] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
        *,
        shard_format: Optional[str] = None,
    ):
        if shard_format not in SHARD_FORMATS:
            raise ValueError(f"shard_format must be one of {SHARD_FORMATS}, got {shard_format!r}")
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
        self._shard_format = shard_format
        self._shard_samples: Optional[ShardSamples] = None

    @property
    def _dataset_objects(self) -> Sequence[S3BucketKeyData]:
        if self._objects is None:
            objects = dataset_objects(self._get_dataset_objects, self._get_client(), whole=True)
            # A manifest's or a listing's objects are in an index file already, each entry made when indexed.
            self._objects = objects if isinstance(objects, IndexedObjects) else list(objects)
        return self._objects

    @property
    def _tar_samples(self) -> ShardSamples:
        if self._shard_samples is None:
            # A prefix's listing holds every sidecar there is: no GET for the ones it does not list.
            listed = isinstance(self._get_dataset_objects, ObjectsUnderPrefix)
            self._shard_samples = index_shards(self._dataset_objects, self._get_client(), listed=listed)
        return self._shard_samples

    def __len__(self) -> int:
        if self._shard_format == "tar":
            return len(self._tar_samples)
        return len(self._dataset_objects)

    def _get_object(self, i: int) -> S3Reader:
        return self._reader(self._dataset_objects[_as_index(i)])

    def __getitem__(self, i: int) -> Any:
        if self._shard_format == "tar":
            return self._tar_sample(self._start_tar_read(i))
        return self._sample(self._get_object(i))

    def __getitems__(self, indices: Sequence[int]) -> List[Any]:
        # Start every GET of the batch before the first one is read: they run concurrently.
        if self._shard_format == "tar":
            pending = [self._start_tar_read(i) for i in indices]
            return [self._tar_sample(sample) for sample in pending]
        readers = [self._get_object(i) for i in indices]
        for reader in readers:
            reader.prefetch()
        return [self._sample(reader) for reader in readers]

    def _start_tar_read(self, i: int) -> PendingSample:
        return self._tar_samples.start_read(self._get_client(), _as_index(i))

    def _tar_sample(self, pending: PendingSample) -> Any:
        with self._reading(pending.bucket, pending.key):
            transform: Callable[[Any], Any] = self._transform  # given sample dicts, not readers
            return transform(pending.sample())


def _as_index(i) -> int:
    try:
        return operator.index(i)  # ints, NumPy integers and 0-d tensors, as a list takes them
    except TypeError:
        raise TypeError(f"dataset indices must be integers, got {type(i).__name__}") from None
