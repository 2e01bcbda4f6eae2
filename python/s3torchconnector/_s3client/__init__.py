from ._mock_s3client import MockS3Client
from ._s3client import S3Client
from .list_object_stream import ListObjectStream
from .object_info import HeadObjectResult, ListObjectResult, ObjectInfo, RestoreStatus
from .s3client_config import S3ClientConfig

__all__ = [
    "S3ClientConfig",
    "S3Client",
    "MockS3Client",
    "ObjectInfo",
    "HeadObjectResult",
    "ListObjectResult",
    "ListObjectStream",
    "RestoreStatus",
]
