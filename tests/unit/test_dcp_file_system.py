"""s3torchconnector.dcp's S3FileSystem on the in-memory MockS3Client (no server): ls lists exactly
one folder, and a rename whose delete of the old name had to be retried says so in the log. DCP
itself over HTTP: tests/e2e/test_dcp.py."""

import pytest
from mock_clients import mock_client_with_objects

from s3torchconnector._s3client import MockS3Client

REGION = "us-east-1"
BUCKET = "test-bucket"


@pytest.fixture
def client() -> MockS3Client:
    return mock_client_with_objects(REGION, BUCKET)


def test_dcp_file_system_ls_lists_exactly_the_folder():
    """S3FileSystem.ls: a path with or without its trailing slash lists that folder only, not a
    sibling that shares its name as a prefix, nor the rest of the bucket."""
    from s3torchconnector.dcp import S3FileSystem

    client = MockS3Client(REGION, BUCKET)
    for key in ("ckpt/a", "ckpt/sub/b", "ckpt2/c", "other/d"):
        client.add_object(key, b"x")
    fs = S3FileSystem(REGION, s3_client=client)
    expected = [f"s3://{BUCKET}/ckpt/a", f"s3://{BUCKET}/ckpt/sub/b"]
    assert fs.ls(f"s3://{BUCKET}/ckpt") == expected
    assert fs.ls(f"s3://{BUCKET}/ckpt/") == expected
    assert len(fs.ls(f"s3://{BUCKET}")) == 4


def test_a_retried_delete_of_a_rename_is_logged_with_the_object_and_the_error(client, monkeypatch, caplog):
    """S3FileSystem.rename: each failed delete before the last is a warning that names the object
    and the error (an operator's only sign that the old name nearly lingered)."""
    import logging

    from s3torchconnector import S3Exception
    from s3torchconnector.dcp import S3FileSystem

    delete = client.delete_object
    failures = [S3Exception("InternalError: try again")]

    def flaky_delete(bucket, key):
        if failures:
            raise failures.pop()
        return delete(bucket, key)

    monkeypatch.setattr(client, "delete_object", flaky_delete)
    with caplog.at_level(logging.WARNING, logger="s3torchconnector"):
        S3FileSystem(REGION, s3_client=client).rename(f"s3://{BUCKET}/k1", f"s3://{BUCKET}/renamed")
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [f"rename: deleting s3://{BUCKET}/k1 failed (InternalError: try again), retrying"]
    assert [info.key for page in client.list_objects(BUCKET) for info in page.object_info] == [
        "k0",
        "k2",
        "k3",
        "k4",
        "renamed",
    ]
