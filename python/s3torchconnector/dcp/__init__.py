"""PyTorch Distributed Checkpoint (``torch.distributed.checkpoint``) on S3.

``dcp.save(state_dict, storage_writer=S3StorageWriter(region, "s3://bucket/ckpt"))`` and
``dcp.load(state_dict, storage_reader=S3StorageReader(region, "s3://bucket/ckpt"))``.
"""

try:
    import torch.distributed.checkpoint  # noqa: F401
    from torch.distributed.checkpoint.filesystem import FileSystemBase  # noqa: F401
except ImportError as _error:  # torch built without distributed support, or too old
    raise ImportError(
        "s3torchconnector.dcp needs torch.distributed.checkpoint, which this PyTorch build lacks "
        f"({_error}). Install a PyTorch with distributed support (2.3 or later): "
        'pip install "s3torchconnector[dcp]"'
    ) from _error

from .s3_file_system import S3FileSystem, S3StorageReader, S3StorageWriter
from .s3_prefix_strategy import (
    BinaryPrefixStrategy,
    DefaultPrefixStrategy,
    HexPrefixStrategy,
    NumericPrefixStrategy,
    RoundRobinPrefixStrategy,
    S3PrefixStrategyBase,
)

__all__ = [
    "S3FileSystem",
    "S3StorageReader",
    "S3StorageWriter",
    "S3PrefixStrategyBase",
    "DefaultPrefixStrategy",
    "NumericPrefixStrategy",
    "BinaryPrefixStrategy",
    "HexPrefixStrategy",
    "RoundRobinPrefixStrategy",
]
