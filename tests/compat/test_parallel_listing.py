"""Listing in parallel (start-after ranges, cut again as they turn out large) gives exactly what one
pagination gives: the same keys, sizes and ETags in the same order, on moto and on rclone. Pages of 7
keys make a few hundred objects cut into many ranges, some ending mid-folder."""

import json
import time

import pytest

from s3torchconnector import S3IterableDataset, S3MapDataset
from s3torchconnector._listing.parallel_listing import _ParallelListing, list_in_parallel
from s3torchconnector._s3client import S3Client

ODD_NAMES = [
    "a b",
    "a+b",
    "a%20b",
    "a=b",
    "é",
    "日本/x",
    "日本語",
    "~tilde",
    "Zeta",
    "zeta",
    "9",
    "-dash",
    "_u",
    "a/b/c",
]


def keys_of_every_kind():
    flat = [f"ds/{i:03d}.bin" for i in range(120)]
    nested = [f"ds/nested/{folder}/{i:02d}" for folder in "abc" for i in range(20)]
    odd = [f"ds/odd/{name}" for name in ODD_NAMES]
    outside = ["dt/other", "d/other", "ds.txt", "dr/x"]  # around the prefix, not under it
    return flat + nested + odd, outside


@pytest.fixture
def listed_bucket(both_s3):
    inside, outside = keys_of_every_kind()
    for i, key in enumerate(inside + outside):
        both_s3.put(key, b"x" * (i % 5))  # sizes and ETags that differ between neighbours
    return both_s3


def one_pagination(client: S3Client, bucket: str, prefix: str):
    return [(o.key, o.size, o.etag) for page in client.list_objects(bucket, prefix) for o in page.object_info]


def test_parallel_listing_gives_what_one_pagination_gives(listed_bucket):
    client = S3Client(listed_bucket.region, endpoint=listed_bucket.endpoint)
    for prefix in ["ds/", "", "ds/odd/", "ds/0", "ds/nested/b"]:
        expected = one_pagination(client, listed_bucket.bucket, prefix)

        listed = list_in_parallel(client, listed_bucket.bucket, prefix, concurrency=4, page_size=7)
        got = [(o.key, o.size, o.etag) for o in listed]

        assert len(expected) >= 2 * 7, f"the listing of {prefix!r} must span several pages"
        assert got == expected, prefix


def test_datasets_that_need_the_whole_listing_list_it_in_key_order(listed_bucket):
    """A map dataset and a shuffled iterable one list in parallel: same objects, same order, as a
    plain pass, which lists page by page."""
    uri = listed_bucket.uri("ds/")
    options = dict(region=listed_bucket.region, endpoint=listed_bucket.endpoint, transform=lambda r: r.key)
    plain = list(S3IterableDataset.from_prefix(uri, **options))
    mapped = S3MapDataset.from_prefix(uri, **options)
    shuffled = list(S3IterableDataset.from_prefix(uri, shuffle=True, seed=3, **options))

    assert plain == [
        key
        for key, *_ in one_pagination(
            S3Client(listed_bucket.region, endpoint=listed_bucket.endpoint), listed_bucket.bucket, "ds/"
        )
    ]
    assert [mapped[i] for i in range(len(mapped))] == plain
    assert sorted(shuffled) == sorted(plain) and shuffled != plain


def test_a_list_objects_put_in_place_by_a_test_is_still_what_a_map_dataset_lists_with(listed_bucket, monkeypatch):
    """Code that replaces S3Client.list_objects (a test double, a plugin) keeps seeing every listing."""
    calls = []
    own = S3Client.list_objects

    def recorded(self, bucket, prefix="", delimiter="", max_keys=1000):
        calls.append(prefix)
        return own(self, bucket, prefix, delimiter, max_keys)

    monkeypatch.setattr(S3Client, "list_objects", recorded)
    dataset = S3MapDataset.from_prefix(
        listed_bucket.uri("ds/"), region=listed_bucket.region, endpoint=listed_bucket.endpoint
    )

    assert len(dataset) == len(keys_of_every_kind()[0])
    assert calls == ["ds/"]


@pytest.mark.parametrize("pages_ahead, concurrency", [(1, 2), (3, 4), (8, 4)])
def test_a_slow_consumer_holds_a_bounded_number_of_pages(listed_bucket, pages_ahead, concurrency):
    """The ranges park once ``pages_ahead`` pages wait for the consumer, and go on as it catches up:
    the consumer here takes one object at a time (as write_manifest writes a line), and at most the
    bound plus one page per request in flight ever waits. The listing is still exactly one
    pagination's, and a bound of one page with two threads does not deadlock."""
    client = S3Client(listed_bucket.region, endpoint=listed_bucket.endpoint)
    expected = one_pagination(client, listed_bucket.bucket, "ds/")
    listing = _ParallelListing(client, listed_bucket.bucket, "ds/", concurrency, 7, pages_ahead=pages_ahead)
    got = []
    for info in listing.objects():
        got.append((info.key, info.size, info.etag))
        time.sleep(0.001)  # a consumer slower than the listing: the listing would otherwise run ahead
    assert got == expected
    assert listing.most_waiting <= pages_ahead + concurrency
    assert len(expected) > 2 * 7 * (pages_ahead + concurrency)  # a bound that binds


def test_write_manifest_lists_in_parallel_and_writes_one_paginations_order(listed_bucket):
    from s3torchconnector.manifest import write_manifest

    client = S3Client(listed_bucket.region, endpoint=listed_bucket.endpoint)
    expected = one_pagination(client, listed_bucket.bucket, "ds/")
    count = write_manifest(
        listed_bucket.uri("ds/"),
        listed_bucket.uri("m.jsonl"),
        region=listed_bucket.region,
        endpoint=listed_bucket.endpoint,
    )
    lines = [json.loads(line) for line in listed_bucket.get("m.jsonl").decode().splitlines()[1:]]
    assert count == len(expected)
    assert [(line["key"], line["size"], line["etag"]) for line in lines] == expected
