# Importable from here as in the original, which left some of them out of __all__ too.
from .constructor import DCPOptimizedConstructor, S3ReaderConstructor  # noqa: F401
from .dcp_optimized import DCPOptimizedS3Reader, ItemRange, RangeGroup  # noqa: F401
from .protocol import DCPS3ReaderConstructorProtocol, GetStreamCallable, S3ReaderConstructorProtocol  # noqa: F401
from .ranged import RangedS3Reader
from .s3reader import S3Reader
from .sequential import SequentialS3Reader

__all__ = [
    "S3Reader",
    "S3ReaderConstructor",
    "SequentialS3Reader",
    "RangedS3Reader",
    "DCPOptimizedS3Reader",
    "S3ReaderConstructorProtocol",
]
