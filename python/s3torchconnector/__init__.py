"""Fast S3 datasets, readers, writers and checkpoints for PyTorch, over the AWS Common Runtime."""

from ._listing.manifest import write_manifest
from ._metrics import merge_metrics
from ._s3client import S3ClientConfig
from ._version import __version__
from .mixed_dataset import MixedDataset
from .s3checkpoint import S3Checkpoint
from .s3exception import (
    AccessDeniedError,
    CredentialsError,
    NoSuchBucketError,
    NoSuchKeyError,
    ObjectChangedError,
    S3ConnectionError,
    S3Exception,
    ThrottledError,
)
from .s3iterable_dataset import S3IterableDataset
from .s3map_dataset import S3MapDataset
from .s3reader import S3Reader, S3ReaderConstructor
from .s3writer import S3Writer
from .shard_writer import ShardWriter

__all__ = [
    "S3IterableDataset",
    "S3MapDataset",
    "MixedDataset",
    "S3Checkpoint",
    "S3Reader",
    "S3ReaderConstructor",
    "S3Writer",
    "ShardWriter",
    "S3Exception",
    "NoSuchKeyError",
    "NoSuchBucketError",
    "AccessDeniedError",
    "CredentialsError",
    "ObjectChangedError",
    "ThrottledError",
    "S3ConnectionError",
    "S3ClientConfig",
    "write_manifest",
    "merge_metrics",
    "__version__",
]
