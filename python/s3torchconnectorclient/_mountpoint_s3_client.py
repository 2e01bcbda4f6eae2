"""Compatibility with code written for the original package, whose native client module this was.

``from s3torchconnectorclient._mountpoint_s3_client import S3Exception`` is how many users catch
errors; the result and stream types, and the raw clients ``MountpointS3Client`` and
``MockMountpointS3Client`` (which the original's own tests and some plugins use), came from here too.
"""

from types import SimpleNamespace
from typing import Optional

from s3torchconnector import S3Exception, __version__
from s3torchconnector._native import GetObjectStream, PutObjectStream
from s3torchconnector._s3client import (
    HeadObjectResult,
    ListObjectResult,
    ListObjectStream,
    MockS3Client,
    ObjectInfo,
    RestoreStatus,
    S3Client,
    S3ClientConfig,
)
from s3torchconnector._user_agent import UserAgent
from s3torchconnector._validation import check_bucket, check_key

__all__ = [
    "MountpointS3Client",
    "MockMountpointS3Client",
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

_DEFAULT_PART_SIZE = S3ClientConfig().part_size


class MountpointS3Client:
    """The original's raw client: its constructor, attributes and methods, over our engine.

    ``get_object`` returns a stream that iterates over the body as ``bytes`` chunks and has
    ``tell()``, ``bucket`` and ``key``; ``list_objects`` returns a ``ListObjectStream``.
    """

    def __init__(
        self,
        region: str,
        user_agent_prefix: str = "",
        throughput_target_gbps: float = 10.0,
        part_size: int = _DEFAULT_PART_SIZE,
        profile: Optional[str] = None,
        unsigned: bool = False,
        endpoint: Optional[str] = None,
        force_path_style: bool = False,
        max_attempts: int = 10,
    ):
        config = S3ClientConfig(
            throughput_target_gbps=throughput_target_gbps,
            part_size=part_size,
            profile=profile,
            unsigned=unsigned,
            force_path_style=force_path_style,
            max_attempts=max_attempts,
        )
        # The prefix is sent as given, as the original did.
        agent = SimpleNamespace(prefix=user_agent_prefix or UserAgent.get_default_prefix())
        self._use(S3Client(region, endpoint=endpoint, user_agent=agent, s3client_config=config))

    @classmethod
    def _over(cls, client: S3Client) -> "MountpointS3Client":
        raw = cls.__new__(cls)
        raw._use(client)
        return raw

    def _use(self, client: S3Client) -> None:
        config = client.s3client_config
        self._s3client = client
        self.region = client.region
        self.endpoint = client.endpoint or ""
        self.user_agent_prefix = client.user_agent_prefix
        self.throughput_target_gbps = config.throughput_target_gbps
        self.part_size = config.part_size
        self.profile = config.profile
        self.unsigned = config.unsigned
        self.force_path_style = config.force_path_style
        self.max_attempts = config.max_attempts

    def get_object(self, bucket: str, key: str, start: Optional[int] = None, end: Optional[int] = None):
        return self._s3client._get_object_stream(bucket, key, start, end)

    def put_object(self, bucket: str, key: str, storage_class: Optional[str] = None):
        # The raw stream, as the original returned: closing it completes the upload.
        check_bucket(bucket)
        check_key(key)
        return self._s3client._client.put_object(bucket, key, storage_class or "")

    def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "", max_keys: int = 1000) -> ListObjectStream:
        return self._s3client.list_objects(bucket, prefix, delimiter, max_keys)

    def head_object(self, bucket: str, key: str) -> HeadObjectResult:
        return self._s3client.head_object(bucket, key)

    def delete_object(self, bucket: str, key: str) -> None:
        self._s3client.delete_object(bucket, key)

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        self._s3client.copy_object(src_bucket, src_key, dst_bucket, dst_key)


class MockMountpointS3Client:
    """The original's in-memory bucket for tests: ``add_object``, ``remove_object``, and
    ``create_mocked_client()`` for a ``MountpointS3Client`` that reads and writes it."""

    def __init__(
        self,
        region: str,
        bucket: str,
        throughput_target_gbps: float = 10.0,
        part_size: int = _DEFAULT_PART_SIZE,
        user_agent_prefix: str = "mock_client",
        unsigned: bool = False,
        force_path_style: bool = False,
        max_attempts: int = 10,
    ):
        config = S3ClientConfig(
            throughput_target_gbps=throughput_target_gbps,
            part_size=part_size,
            unsigned=unsigned,
            force_path_style=force_path_style,
            max_attempts=max_attempts,
        )
        self._mock = MockS3Client(region, bucket, s3client_config=config)
        self._mock._user_agent_prefix = user_agent_prefix
        self.region = region
        self.throughput_target_gbps = throughput_target_gbps
        self.part_size = part_size
        self.user_agent_prefix = user_agent_prefix
        self.unsigned = unsigned
        self.force_path_style = force_path_style
        self.max_attempts = max_attempts

    def create_mocked_client(self) -> MountpointS3Client:
        return MountpointS3Client._over(self._mock)

    def add_object(self, key: str, data: bytes) -> None:
        self._mock.add_object(key, data)

    def remove_object(self, key: str) -> None:
        self._mock.remove_object(key)


def join_all_managed_threads(timeout_secs: float) -> None:
    """The original waited here for its native threads before a fork. Ours need no waiting: a forked
    child never touches the parent's native client and builds its own (README, "Processes")."""
