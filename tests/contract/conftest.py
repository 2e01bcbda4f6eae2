"""The client contract: one suite, run on both implementations of the client interface.

- "native": S3Client over the native client (s3torchconnector._native.NativeClient), against moto (the
  session's server from tests/conftest.py, a fresh bucket per test);
- "fake": MockS3Client over the in-memory bucket (s3torchconnector._s3client._in_memory_s3.InMemoryS3).

A test takes ``side`` and runs once on each: whatever it asserts, both must do. When they differ, the fake
is what changes: it stands in for the native client in every unit test.
"""

import uuid
from typing import Callable, Optional

import pytest
from local_s3 import REGION, LocalS3

from s3torchconnector._s3client import MockS3Client, S3Client, S3ClientConfig

SIDES = ["native", "fake"]


class Side:
    """One implementation: its client, on a bucket of its own, and the names of a bucket that does not exist."""

    def __init__(self, name: str, client: S3Client, bucket: str, new_client: Callable[[S3ClientConfig], S3Client]):
        self.name = name
        self.client = client
        self.bucket = bucket
        self.missing_bucket = f"missing-{uuid.uuid4().hex[:12]}"
        self._new_client = new_client

    @property
    def native(self):
        """The interface under S3Client: the NativeClient, or the InMemoryS3 standing in for it."""
        return self.client._client

    def new_client(self, config: S3ClientConfig) -> S3Client:
        """A client of its own, made with ``config``. On the fake it comes with its own (empty) bucket of the same
        name, so a test that needs it uses only it, from an empty bucket on."""
        return self._new_client(config)

    def put(
        self,
        key: str,
        data: bytes,
        storage_class: Optional[str] = None,
        client: Optional[S3Client] = None,
        bucket: Optional[str] = None,
    ) -> None:
        """Uploads ``data`` through ``client`` (this side's by default) to ``bucket`` (this side's by default)."""
        with (client or self.client).put_object(bucket or self.bucket, key, storage_class=storage_class) as writer:
            writer.write(data)


@pytest.fixture(scope="session")
def native_client(s3_endpoint) -> S3Client:
    return S3Client(REGION, endpoint=s3_endpoint)


def native_side(endpoint: str, client: S3Client, bucket: str) -> Side:
    return Side("native", client, bucket, lambda config: S3Client(REGION, endpoint=endpoint, s3client_config=config))


def fake_side(bucket: Optional[str] = None) -> Side:
    bucket = bucket or f"test-{uuid.uuid4().hex[:16]}"
    return Side(
        "fake",
        MockS3Client(REGION, bucket),
        bucket,
        lambda config: MockS3Client(REGION, bucket, s3client_config=config),
    )


@pytest.fixture(params=SIDES)
def side(request) -> Side:
    if request.param == "fake":
        return fake_side()
    s3: LocalS3 = request.getfixturevalue("s3")  # moto starts only for the native side's tests
    return native_side(s3.endpoint, request.getfixturevalue("native_client"), s3.bucket)


@pytest.fixture(scope="module", params=SIDES)
def module_side(request) -> Side:
    """A side whose bucket lives for the module: for tests that only read what one seeding wrote."""
    if request.param == "fake":
        return fake_side()
    endpoint = request.getfixturevalue("s3_endpoint")
    local = LocalS3(endpoint, f"test-{uuid.uuid4().hex[:16]}")
    local.boto3.create_bucket(Bucket=local.bucket)
    return native_side(endpoint, request.getfixturevalue("native_client"), local.bucket)
