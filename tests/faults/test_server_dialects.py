"""How S3-compatible servers other than S3 answer, imitated by the fault proxy in front of moto: each
test rewrites moto's answer the way such a server (rclone's `serve s3`, nginx serving files) gives it,
and checks that what boto3 copes with, we cope with. tests/compat runs the same against rclone itself.
"""

import re

import pytest
from torch.utils.data import DataLoader

from s3torchconnector import ObjectChangedError, S3Exception, S3IterableDataset, S3MapDataset
from s3torchconnector._s3client import S3Client, S3ClientConfig
from s3torchconnector.manifest import write_manifest
from s3torchconnector.s3reader import S3ReaderConstructor

from .proxy import FaultProxy, error, rewrite, stall

MIB = 1024 * 1024
PART = 5 * MIB

READERS = {
    "sequential": S3ReaderConstructor.sequential(),
    "range_based": S3ReaderConstructor.range_based(),
}


def client_via(proxy: FaultProxy, s3) -> S3Client:
    return S3Client(s3.region, endpoint=proxy.url, s3client_config=S3ClientConfig(part_size=PART))


def is_create_multipart_upload(request) -> bool:
    return request.method == "POST" and "uploads" in request.query


def is_listing(request) -> bool:
    return request.method == "GET" and request.query.get("list-type") == "2"


def renamed_root(status, headers, body):
    """rclone's answer to CreateMultipartUpload: S3's UploadId under another root element."""
    return status, headers, body.replace(b"InitiateMultipartUploadResult", b"InitiateMultipartUpload")


# ---------------------------------------------------------------------- empty objects


def answer_empty_as_nginx(status, headers, body):
    """A server that ignores the range asked of an empty file: 200, no Content-Range, no body."""
    return 200, [(name, value) for name, value in headers if name.lower() != "content-range"], b""


EMPTY_OBJECT_ANSWERS = {
    # S3 adds <ActualObjectSize>0</ActualObjectSize> to this 416; rclone does not.
    "416 without its size": error(416, "InvalidRange"),
    "200 without Content-Range": rewrite(answer_empty_as_nginx),
}


@pytest.mark.parametrize("answer", EMPTY_OBJECT_ANSWERS.values(), ids=EMPTY_OBJECT_ANSWERS.keys())
@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_an_empty_object_reads_as_no_bytes(s3, proxy, answer, reader):
    s3.put("data/empty", b"")
    s3.put("data/full", b"not empty")
    proxy.add(lambda request: request.method == "GET" and request.path.endswith("/data/empty"), answer)
    client = client_via(proxy, s3)
    assert client.get_object(s3.bucket, "data/empty", reader_constructor=reader).read() == b""
    pieces = client.get_object(s3.bucket, "data/empty", reader_constructor=reader)
    assert pieces.read(10) == b"" and pieces.tell() == 0
    options = dict(region=s3.region, endpoint=proxy.url, reader_constructor=reader)
    for dataset in (
        S3MapDataset.from_prefix(s3.uri("data/"), **options),
        S3IterableDataset.from_prefix(s3.uri("data/"), **options),
    ):
        loader = DataLoader(dataset, batch_size=None, num_workers=0, collate_fn=lambda item: (item.key, item.read()))
        assert sorted(loader) == [("data/empty", b""), ("data/full", b"not empty")]
    assert proxy.requests(lambda request: request.path.endswith("/data/empty"))  # the rewritten answers were read


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_a_later_part_answered_416_fails_the_read(s3, proxy, reader):
    """Only the first answer can say that an object is empty: a 416 to a later part (the object shrank under
    the read, on a server that ignores If-Match) is an error, not an empty or short read."""
    data = bytes(range(256)) * (12 * MIB // 256)
    s3.put("big", data)
    proxy.add(lambda request: request.is_get_of("big") and (request.range_start or 0) > 0, error(416, "InvalidRange"))
    with pytest.raises(S3Exception) as failed:
        client_via(proxy, s3).get_object(s3.bucket, "big", reader_constructor=reader).read()
    assert failed.value.status == 416


def test_an_empty_object_dropped_while_s3_is_asked_again_does_not_crash(s3, proxy):
    """S3's 416 for an empty object makes the CRT ask again with partNumber=1; a download cancelled while that
    request waits ended it without a response, which the unchanged CRT read (a crash on its thread)."""
    s3.put("empty", b"")
    is_second_ask = lambda request: request.method == "GET" and "partNumber" in request.query
    proxy.add(is_second_ask, stall(30))
    client = client_via(proxy, s3)
    stream = client._get_object_stream(s3.bucket, "empty")
    assert proxy.wait_for(is_second_ask, 1, timeout=20)
    stream.close()
    proxy.clear()
    # The cancelled request ends on the CRT's threads; the client goes on serving.
    assert client.get_object(s3.bucket, "empty").read() == b""


# ---------------------------------------------------------------------- multipart uploads


def test_an_upload_id_under_another_root_element_uploads(s3, proxy):
    proxy.add(is_create_multipart_upload, rewrite(renamed_root))
    data = bytes(range(256)) * (12 * MIB // 256)  # three parts
    with client_via(proxy, s3).put_object(s3.bucket, "big") as writer:
        writer.write(data)
    assert s3.get("big") == data
    assert proxy.requests(is_create_multipart_upload)[0].action == "rewrite"


def test_an_answer_without_an_upload_id_fails_clearly_and_creates_nothing(s3, proxy):
    proxy.add(
        is_create_multipart_upload,
        rewrite(lambda status, headers, body: (status, headers, body.replace(b"UploadId", b"UploadKey"))),
    )
    writer = client_via(proxy, s3).put_object(s3.bucket, "big")
    with pytest.raises(S3Exception) as failed:
        for _ in range(4):  # more than a part: the upload starts with the second write
            writer.write(b"x" * (3 * MIB))
        writer.close()
    message = str(failed.value)
    assert failed.value.code == "AWS_ERROR_S3_MISSING_UPLOAD_ID"
    assert f"s3://{s3.bucket}/big" in message and "without a retry" in message and "part_size" in message
    assert len(proxy.requests(is_create_multipart_upload)) == 1  # not retried
    assert "big" not in s3.keys()


# ---------------------------------------------------------------------- ETags


def unquoted_etags(status, headers, body):
    """rclone's listing: ETags without their quotes (GET and HEAD send them quoted)."""
    return status, headers, re.sub(rb"<ETag>(&quot;|&#34;|\")(.*?)(&quot;|&#34;|\")</ETag>", rb"<ETag>\2</ETag>", body)


@pytest.fixture
def objects(s3):
    data = {f"train/{i:03d}.bin": f"sample {i}".encode() * (i + 1) for i in range(6)}
    for key, body in data.items():
        s3.put(key, body)
    return data


@pytest.mark.parametrize("kind", [S3MapDataset, S3IterableDataset])
def test_a_manifest_of_unquoted_etags_reads_its_objects(s3, proxy, objects, kind):
    proxy.add(is_listing, rewrite(unquoted_etags))
    write_manifest(s3.uri("train/"), s3.uri("m.jsonl"), region=s3.region, endpoint=proxy.url)
    assert '"etag": "\\"' not in s3.get("m.jsonl").decode()  # the listing's ETags, as the server gave them
    dataset = kind.from_manifest(
        s3.uri("m.jsonl"), region=s3.region, endpoint=proxy.url, transform=lambda r: (r.key, r.read())
    )
    assert sorted(dataset) == sorted(objects.items())


def test_a_weak_etag_does_not_match_the_manifests(s3, proxy, objects):
    """RFC 9110's strong comparison, which If-Match uses: W/"x" is not the version "x"."""
    write_manifest(s3.uri("train/"), s3.uri("m.jsonl"), region=s3.region, endpoint=proxy.url)
    proxy.add(
        lambda request: request.is_get_of("train/002.bin"),
        rewrite(
            lambda status, headers, body: (200, [(n, "W/" + v if n.lower() == "etag" else v) for n, v in headers], body)
        ),
    )
    dataset = S3MapDataset.from_manifest(s3.uri("m.jsonl"), region=s3.region, endpoint=proxy.url)
    assert dataset[1].read() == objects["train/001.bin"]
    with pytest.raises(ObjectChangedError):
        dataset[2].read()


@pytest.mark.parametrize("kind", [S3MapDataset, S3IterableDataset])
def test_a_changed_object_from_a_server_that_ignores_if_match_names_the_manifest(s3, proxy, objects, kind):
    write_manifest(s3.uri("train/"), s3.uri("m.jsonl"), region=s3.region, endpoint=proxy.url)
    # The server answers with the object's new version whatever If-Match said: only its ETag tells.
    proxy.add(
        lambda request: request.is_get_of("train/002.bin"),
        rewrite(
            lambda status, headers, body: (200, [(n, '"0123"' if n.lower() == "etag" else v) for n, v in headers], body)
        ),
    )
    dataset = kind.from_manifest(
        s3.uri("m.jsonl"), region=s3.region, endpoint=proxy.url, transform=lambda r: (r.key, r.read())
    )
    with pytest.raises(ObjectChangedError) as changed:
        list(dataset)
    assert s3.uri("train/002.bin") in str(changed.value) and s3.uri("m.jsonl") in str(changed.value)
