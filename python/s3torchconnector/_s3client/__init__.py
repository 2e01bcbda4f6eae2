from ._s3client import S3Client
from ._mock_s3client import MockS3Client
from .object_info import HeadObjectResult, ListObjectResult, ObjectInfo
from .s3client_config import S3ClientConfig

__all__ = ["S3Client", "S3ClientConfig", "ObjectInfo", "HeadObjectResult", "ListObjectResult"]
