"""Compatibility with code written for the original package, whose native client module this was.

``from s3torchconnectorclient._mountpoint_s3_client import S3Exception`` is how many users catch
errors; the result and stream types, and the raw clients ``MountpointS3Client`` and
``MockMountpointS3Client`` (which the original's own tests and some plugins use), came from here too.
"""

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


class _RawClientSettings:
    """The settings the original's raw clients had as attributes, read from the S3Client under them."""

    _s3client: S3Client

    @property
    def region(self) -> str:
        return self._s3client.region

    @property
    def user_agent_prefix(self) -> str:
        return self._s3client.user_agent_prefix

    @property
    def throughput_target_gbps(self) -> float:
        return self._s3client.s3client_config.throughput_target_gbps

    @property
    def part_size(self) -> int:
        return self._s3client.s3client_config.part_size

    @property
    def unsigned(self) -> bool:
        return self._s3client.s3client_config.unsigned

    @property
    def force_path_style(self) -> bool:
        return self._s3client.s3client_config.force_path_style

    @property
    def max_attempts(self) -> int:
        return self._s3client.s3client_config.max_attempts


class _PrefixAsGiven(UserAgent):
    """A user agent sent exactly as given, as the original's raw client sent its prefix."""

    def __init__(self, prefix: str):
        super().__init__()
        self._given = prefix

    @property
    def prefix(self) -> str:
        return self._given


class MountpointS3Client(_RawClientSettings):
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
        agent = _PrefixAsGiven(user_agent_prefix or UserAgent.get_default_prefix())
        self._use(S3Client(region, endpoint=endpoint, user_agent=agent, s3client_config=config))

    @classmethod
    def _over(cls, client: S3Client) -> "MountpointS3Client":
        raw = cls.__new__(cls)
        raw._use(client)
        return raw

    def _use(self, client: S3Client) -> None:
        self._s3client = client

    @property
    def _client(self):
        """The native client, named as S3Client names it: the original's datasets restore a listing with
        ``ListObjectStream._from_state(client=<this client>, ...)``, which lists through it."""
        return self._s3client._client

    @property
    def endpoint(self) -> str:
        return self._s3client.endpoint or ""

    @property
    def profile(self) -> Optional[str]:
        return self._s3client.s3client_config.profile

    def get_object(self, bucket: str, key: str, start: Optional[int] = None, end: Optional[int] = None):
        return self._s3client._get_object_stream(bucket, key, start, end)

    def put_object(self, bucket: str, key: str, storage_class: Optional[str] = None):
        # The raw stream, as the original returned: closing it completes the upload.
        check_bucket(bucket)
        check_key(key)
        return self._s3client._client.put_object(bucket, key, storage_class or "")

    def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str = "", max_keys: int = 1000
    ) -> ListObjectStream:
        return self._s3client.list_objects(bucket, prefix, delimiter, max_keys)

    def head_object(self, bucket: str, key: str) -> HeadObjectResult:
        return self._s3client.head_object(bucket, key)

    def delete_object(self, bucket: str, key: str) -> None:
        self._s3client.delete_object(bucket, key)

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        self._s3client.copy_object(src_bucket, src_key, dst_bucket, dst_key)


class MockMountpointS3Client(_RawClientSettings):
    """The original's in-memory bucket for tests: ``add_object``, ``remove_object``, and
    ``create_mocked_client()`` for a ``MountpointS3Client`` that reads and writes it."""

    _s3client: MockS3Client

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
        self._s3client = MockS3Client(
            region, bucket, user_agent=_PrefixAsGiven(user_agent_prefix), s3client_config=config
        )

    def create_mocked_client(self) -> MountpointS3Client:
        return MountpointS3Client._over(self._s3client)

    def add_object(self, key: str, data: bytes) -> None:
        self._s3client.add_object(key, data)

    def remove_object(self, key: str) -> None:
        self._s3client.remove_object(key)


def join_all_managed_threads(timeout_secs: float) -> None:
    """The original waited here for its native threads before a fork. Ours need no waiting: a forked
    child never touches the parent's native client and builds its own (README, "Processes")."""
