"""Readers: file-like objects over one S3 object each, and the constructors that choose them.

``reader_constructor=`` on datasets, S3Client, S3Checkpoint and the DCP reader takes one of
``S3ReaderConstructor.sequential()`` (the default: SequentialS3Reader, one GET per object),
``S3ReaderConstructor.range_based(buffer_size)`` (RangedS3Reader: only the byte ranges read) or
``S3ReaderConstructor.dcp_optimized(max_gap_size)`` (DCPOptimizedS3Reader for planned DCP loads).
Every reader is an S3Reader: read, readinto, seek and tell as on a local file opened ``"rb"``.
"""

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
