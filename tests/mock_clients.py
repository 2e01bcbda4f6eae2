"""In-memory clients the unit tests share."""

from s3torchconnector._s3client import MockS3Client


def mock_client_with_objects(region: str, bucket: str, count: int = 5) -> MockS3Client:
    """A MockS3Client of ``bucket`` holding k0, k1, ... of 1, 2, ... bytes."""
    client = MockS3Client(region, bucket)
    for i in range(count):
        client.add_object(f"k{i}", b"x" * (i + 1))
    return client
