"""Compatibility with code written for the original package, whose native client module this was.

``from s3torchconnectorclient._mountpoint_s3_client import S3Exception`` is how many users catch
errors, and the result and stream types were imported from here too. The original's raw native
clients (``MountpointS3Client``, ``MockMountpointS3Client``) are not: use ``S3Client`` and
``s3torchconnector._s3client.MockS3Client`` (README, "Differences from the original").
"""

from s3torchconnector import S3Exception, __version__
from s3torchconnector._native import GetObjectStream, PutObjectStream
from s3torchconnector._s3client import (
    HeadObjectResult,
    ListObjectResult,
    ListObjectStream,
    ObjectInfo,
    RestoreStatus,
)

__all__ = [
    "S3Exception",
    "__version__",
    "GetObjectStream",
    "PutObjectStream",
    "HeadObjectResult",
    "ListObjectResult",
    "ListObjectStream",
    "ObjectInfo",
    "RestoreStatus",
    "join_all_managed_threads",
]


def join_all_managed_threads(timeout_secs: float) -> None:
    """The original waited here for its native threads before a fork. Ours need no waiting: a forked
    child never touches the parent's native client and builds its own (README, "Processes")."""
