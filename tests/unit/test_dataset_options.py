"""What S3MapDataset and S3IterableDataset do with what they are given, without a server (on the
in-memory MockS3Client, or a client built, which sends nothing): the client config, reader and
transform reach their reads, each kind names itself and its reader in the user agent, and an index
that is not an integer is refused by name. Datasets over HTTP: tests/e2e/test_datasets.py."""

import pytest
from mock_clients import mock_client_with_objects

from s3torchconnector import S3IterableDataset, S3ReaderConstructor
from s3torchconnector._s3bucket_key_data import S3BucketKeyData
from s3torchconnector._s3client import MockS3Client

REGION = "us-east-1"
BUCKET = "test-bucket"


@pytest.fixture
def client() -> MockS3Client:
    return mock_client_with_objects(REGION, BUCKET)


def test_a_map_dataset_uses_the_client_config_and_reader_it_was_given(client):
    """S3MapDataset.__init__ passes s3client_config and reader_constructor on."""
    from s3torchconnector import S3ClientConfig, S3MapDataset
    from s3torchconnector.s3reader import RangedS3Reader

    config = S3ClientConfig(part_size=16 * 1024 * 1024, max_attempts=7)
    dataset = S3MapDataset.from_objects(
        [f"s3://{BUCKET}/k2"],
        region=REGION,
        s3client_config=config,
        reader_constructor=S3ReaderConstructor.range_based(),
    )
    made = dataset._get_client().s3client_config
    assert (made.part_size, made.max_attempts) == (16 * 1024 * 1024, 7)
    dataset._client = client
    reader = dataset[0]
    assert isinstance(reader, RangedS3Reader) and reader.read() == b"xxx"


def test_iterable_dataset_transforms_one_object_on_request(client):
    """S3IterableDataset._get_transformed_object (the original's hook for one object): the
    transform of a reader of that object."""
    dataset = S3IterableDataset.from_objects(
        [f"s3://{BUCKET}/k3"], region=REGION, transform=lambda reader: (reader.key, reader.read())
    )
    dataset._client = client
    assert dataset._get_transformed_object(S3BucketKeyData(BUCKET, "k3")) == ("k3", b"xxxx")


def test_a_map_dataset_index_that_is_not_an_integer_is_named():
    """S3MapDataset._get_object: the TypeError names the index's type."""
    from s3torchconnector import S3MapDataset

    dataset = S3MapDataset.from_objects([f"s3://{BUCKET}/k0"], region=REGION)
    with pytest.raises(TypeError) as raised:
        dataset["0"]
    assert str(raised.value) == "dataset indices must be integers, got str"


def test_each_dataset_kind_names_itself_and_its_reader_in_the_user_agent():
    """S3MapDataset.__init__ (kind="map") and S3IterableDataset's: S3's request logs tell them apart."""
    from s3torchconnector import S3MapDataset

    uris = [f"s3://{BUCKET}/k0"]
    map_agent = S3MapDataset.from_objects(uris, region=REGION)._get_client().user_agent_prefix
    iterable_agent = (
        S3IterableDataset.from_objects(uris, region=REGION, reader_constructor=S3ReaderConstructor.range_based())
        ._get_client()
        .user_agent_prefix
    )
    assert "md/dataset#map md/reader_type#sequential" in map_agent
    assert "md/dataset#iterable md/reader_type#range_based" in iterable_agent
