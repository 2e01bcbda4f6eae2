"""Datasets read through a listing manifest, on the in-memory MockS3Client (no server): each object
and each tar shard is read at the version (ETag) the manifest recorded, and a manifest that cannot
be read fails with an S3Exception that keeps the error's attributes. The manifest itself, written
and read over HTTP, and its command: tests/e2e/test_manifest.py."""

import pytest
from samples import tar_of

from s3torchconnector import S3Exception
from s3torchconnector._s3client import MockS3Client

REGION = "us-east-1"
BUCKET = "bucket"


def test_a_manifest_that_cannot_be_read_keeps_the_errors_attributes():
    """ObjectsFromManifest.read (_listing.manifest): the clearer error still carries code, status,
    bucket, key, request id and operation, for code that handles S3Exception by its attributes."""
    from s3torchconnector import S3MapDataset

    dataset = S3MapDataset.from_manifest(f"s3://{BUCKET}/missing.jsonl", region=REGION)
    dataset._client = MockS3Client(REGION, BUCKET)  # no manifest there
    with pytest.raises(S3Exception) as raised:
        len(dataset)
    error = raised.value
    assert str(error).startswith(f"cannot read the manifest s3://{BUCKET}/missing.jsonl: NoSuchKey")
    assert (error.code, error.status, error.bucket, error.key, error.operation) == (
        "NoSuchKey",
        404,
        BUCKET,
        "missing.jsonl",
        "HeadObject",  # the manifest's version is asked for first: it names the node's shared index
    )
    assert error.request_id == ""  # the in-memory client sends none; the attribute is still there


def test_an_object_of_a_manifest_is_read_at_its_recorded_version(monkeypatch):
    """S3Client._get_object_version pins the reader's requests to the manifest's ETag: an object
    replaced since the manifest was written fails (412 PreconditionFailed), not read as it is now."""
    from s3torchconnector import S3MapDataset
    from s3torchconnector._listing import manifest

    client = MockS3Client(REGION, BUCKET)
    client.add_object("data/0", b"old")
    monkeypatch.setattr(manifest, "S3Client", lambda *args, **kwargs: client)  # write_manifest's own client
    manifest.write_manifest(f"s3://{BUCKET}/data/", f"s3://{BUCKET}/m.jsonl", region=REGION)
    dataset = S3MapDataset.from_manifest(f"s3://{BUCKET}/m.jsonl", region=REGION, transform=lambda r: r.read())
    dataset._client = client
    assert dataset[0] == b"old"
    client.add_object("data/0", b"new")
    with pytest.raises(S3Exception, match="PreconditionFailed"):
        dataset[0]


def test_a_tar_shard_of_a_manifest_is_read_at_its_recorded_version(monkeypatch):
    """S3Client._stream_object gets the ETag the manifest recorded: a shard replaced since the
    manifest was written fails (412 PreconditionFailed) instead of mixing another version in."""
    from s3torchconnector import S3IterableDataset
    from s3torchconnector._listing import manifest

    def tar(text: bytes) -> bytes:
        return tar_of([("s/0.txt", text)])

    client = MockS3Client(REGION, BUCKET)
    client.add_object("shards/0.tar", tar(b"old"))
    monkeypatch.setattr(manifest, "S3Client", lambda *args, **kwargs: client)  # write_manifest's own client
    manifest.write_manifest(f"s3://{BUCKET}/shards/", f"s3://{BUCKET}/m.jsonl", region=REGION)

    def samples():
        made = S3IterableDataset.from_manifest(
            f"s3://{BUCKET}/m.jsonl", region=REGION, shard_format="tar", transform=lambda sample: sample["txt"]
        )
        made._client = client
        return list(made)

    assert samples() == [b"old"]
    client.add_object("shards/0.tar", tar(b"new"))
    with pytest.raises(S3Exception, match="PreconditionFailed"):
        samples()
