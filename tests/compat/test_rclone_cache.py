"""The node cache against rclone's `serve s3`: its listings' ETags must name the versions its GETs
return, and its HEADs the current one, or every read would miss (or, worse, hit a stale entry)."""

import pytest
from faults.proxy import FaultProxy
from node_cache.helpers import cached_client, entry_files, gets, heads
from samples import key_and_bytes, payload

from s3torchconnector import S3IterableDataset, S3MapDataset
from s3torchconnector._s3client import S3ClientConfig


@pytest.fixture
def proxy(s3):
    with FaultProxy(s3.endpoint) as running:
        yield running


@pytest.mark.parametrize("kind", [S3MapDataset, S3IterableDataset], ids=["map", "iterable"])
def test_second_epoch_from_the_cache(s3, proxy, tmp_path, kind):
    objects = {f"train/{i:02d}.bin": payload(5_000 + i, seed=i) for i in range(8)}
    for key, data in objects.items():
        s3.put(key, data)
    config = S3ClientConfig(cache_dir=str(tmp_path / "cache"), cache_max_bytes="16MiB")
    dataset = kind.from_prefix(
        s3.uri("train/"), region=s3.region, endpoint=proxy.url, transform=key_and_bytes, s3client_config=config
    )
    for _ in range(2):
        samples = dataset if kind is S3IterableDataset else (dataset[i] for i in range(len(dataset)))
        assert dict(samples) == objects
    assert gets(proxy) == len(objects) and heads(proxy) == 0
    assert len(entry_files(tmp_path / "cache")) == len(objects)


def test_revalidation_and_overwrite(s3, proxy, tmp_path):
    s3.put("model.pt", b"version one")
    client = cached_client(proxy.url, tmp_path / "cache")
    for _ in range(2):
        assert client.get_object(s3.bucket, "model.pt").read() == b"version one"
    assert (gets(proxy), heads(proxy)) == (1, 1)
    s3.put("model.pt", b"version two, longer")
    assert client.get_object(s3.bucket, "model.pt").read() == b"version two, longer"
    assert (gets(proxy), heads(proxy)) == (2, 2)
