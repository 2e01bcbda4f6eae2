"""MockS3Client: an S3Client over one in-memory bucket, for unit tests without S3 or a server."""

from typing import Optional

from .._user_agent import UserAgent
from ._in_memory_s3 import InMemoryS3
from ._s3client import S3Client
from .s3client_config import S3ClientConfig


class MockS3Client(S3Client):
    """An S3Client whose requests go to an in-memory bucket named ``bucket`` (others do not exist).

    Readers, writers, listings, datasets and checkpoints work on it as on S3: give it to a dataset
    or checkpoint with ``dataset._client = MockS3Client(region, bucket)``, as with the original.

    Processes: the objects are part of the client's pickled state. A DataLoader worker started
    with ``spawn`` or ``forkserver`` receives a copy of the objects present when the dataset was
    pickled; a ``fork`` worker sees a copy of those present at the fork. Either way each process
    then has its own bucket: what a worker writes is not seen by the parent or other workers.
    """

    def __init__(
        self,
        region: str,
        bucket: str,
        user_agent: Optional[UserAgent] = None,
        s3client_config: Optional[S3ClientConfig] = None,
    ):
        super().__init__(region, user_agent=user_agent, s3client_config=s3client_config)
        self._mock_client = InMemoryS3(bucket, part_size=self.s3client_config.part_size)

    def add_object(self, key: str, data: bytes) -> None:
        """Stores ``data`` as the object ``key`` (replacing any), as if it had been uploaded."""
        self._mock_client.add_object(key, data)

    def remove_object(self, key: str) -> None:
        """Removes the object ``key``, if there is one."""
        self._mock_client.remove_object(key)

    def _client_builder(self) -> InMemoryS3:  # type: ignore[override]  # it has NativeClient's interface
        return self._mock_client
