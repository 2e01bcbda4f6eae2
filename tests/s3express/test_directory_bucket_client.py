"""S3Client on S3 Express One Zone directory buckets, through ExpressServer (CreateSession and
s3express-signed requests, before moto): every operation works with one session per bucket, an
expired session is renewed, general purpose buckets on the same client are signed as before, and
what a directory bucket cannot do fails clearly or is worked around."""

import hashlib
import time

import pytest

from s3torchconnector import S3ClientConfig, S3Exception
from s3torchconnector._s3client import S3Client

from .conftest import REGION, directory_bucket_name, express_server_for, moto_client

MIB = 1024 * 1024
SESSION_HEADER = "x-amz-s3session-token"


def client_for(endpoint: str, **config) -> S3Client:
    return S3Client(region=REGION, endpoint=endpoint, s3client_config=S3ClientConfig(**config))


def put(client: S3Client, bucket: str, key: str, data: bytes) -> None:
    writer = client.put_object(bucket, key)
    writer.write(data)
    writer.close()


def keys(client: S3Client, bucket: str, prefix: str = "", delimiter: str = "") -> list:
    return [info.key for page in client.list_objects(bucket, prefix, delimiter) for info in page.object_info]


def signed_service(exchange) -> str:
    return exchange.headers["authorization"].split("Credential=")[1].split("/")[3]


def test_every_operation_works_with_one_session(express_bucket):
    server, bucket = express_bucket.server, express_bucket.name
    client = client_for(server.endpoint, part_size=5 * MIB)
    small = b"small object" * 100
    large = hashlib.shake_256(b"large").digest(12 * MIB)  # three parts

    put(client, bucket, "d/small.bin", small)
    put(client, bucket, "d/large.bin", large)
    assert client.get_object(bucket, "d/small.bin").read() == small
    assert client.get_object(bucket, "d/large.bin").read() == large
    assert client.head_object(bucket, "d/large.bin").size == len(large)
    assert sorted(keys(client, bucket, "d/")) == ["d/large.bin", "d/small.bin"]
    client.copy_object(bucket, "d/small.bin", bucket, "d/copy.bin")
    assert client.get_object(bucket, "d/copy.bin").read() == small
    client.delete_object(bucket, "d/small.bin")
    assert sorted(keys(client, bucket, "d/")) == ["d/copy.bin", "d/large.bin"]

    assert server.refused() == []
    assert server.sessions_created(bucket) == 1
    token = server.sessions(bucket)[0].token
    data_requests = [e for e in server.exchanges() if e.action == "forward"]
    copies = [e for e in data_requests if "x-amz-copy-source" in e.headers]
    assert len(copies) == 1 and SESSION_HEADER not in copies[0].headers  # signed with the user's keys
    assert all(e.headers.get(SESSION_HEADER) == token for e in data_requests if e not in copies)
    assert {signed_service(e) for e in data_requests} == {"s3express"}
    # the upload's parts carried their CRC32C, and S3 (moto) kept the object whole
    assert [e for e in data_requests if "partNumber=3" in e.target and "x-amz-checksum-crc32c" in e.trailers]
    stored = moto_client(server_upstream(server)).get_object(Bucket=bucket, Key="d/large.bin")["Body"].read()
    assert stored == large


def server_upstream(server) -> str:
    return f"http://{server.upstream_host}:{server.upstream_port}"


def test_one_session_per_directory_bucket_and_none_for_general_purpose_buckets(express_server, s3_endpoint):
    first, second, general = directory_bucket_name(), directory_bucket_name(), "general-purpose-bucket"
    for bucket in (first, second, general):
        moto_client(s3_endpoint).create_bucket(Bucket=bucket)
    client = client_for(express_server.endpoint)

    for bucket in (first, second, general, first, second, general):
        put(client, bucket, "k", bucket.encode())
        assert client.get_object(bucket, "k").read() == bucket.encode()
    assert keys(client, general) == ["k"]

    assert express_server.refused() == []
    assert (express_server.sessions_created(first), express_server.sessions_created(second)) == (1, 1)
    plain = [e for e in express_server.exchanges() if e.bucket == general]
    assert plain and all(SESSION_HEADER not in e.headers and signed_service(e) == "s3" for e in plain)


def test_an_expiring_session_is_renewed(s3_endpoint):
    # The CRT stops using a session 5 s before it expires: one of 7 s serves for at most 2 s.
    with express_server_for(s3_endpoint, session_seconds=7) as server:
        bucket = directory_bucket_name()
        moto_client(s3_endpoint).create_bucket(Bucket=bucket)
        client = client_for(server.endpoint)
        put(client, bucket, "k", b"before")
        time.sleep(2.5)
        put(client, bucket, "k", b"after")
        assert client.get_object(bucket, "k").read() == b"after"

        assert server.refused() == []  # the server refuses an expired session's requests
        sessions = server.sessions(bucket)
        assert len(sessions) >= 2
        last_put = [e for e in server.exchanges() if e.method == "PUT"][-1]
        assert last_put.headers[SESSION_HEADER] != sessions[0].token


def test_a_refused_session_says_so(express_server, s3_endpoint, monkeypatch):
    missing = directory_bucket_name()
    with pytest.raises(S3Exception) as no_bucket:
        client_for(express_server.endpoint, max_attempts=1).head_object(missing, "k")
    message = str(no_bucket.value)
    assert "AWS_ERROR_S3EXPRESS_CREATE_SESSION_FAILED" in message
    assert f"S3 Express session (CreateSession) on bucket '{missing}'" in message
    assert "s3express:CreateSession" in message

    bucket = directory_bucket_name()
    moto_client(s3_endpoint).create_bucket(Bucket=bucket)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(S3Exception, match="refused to open an S3 Express session"):
        client_for(express_server.endpoint, max_attempts=1).get_object(bucket, "k").read()
    assert express_server.sessions() == []


@pytest.mark.parametrize(
    "endpoint_host, config, reason",
    [("127.0.0.1", {}, "is an IP address"), ("localhost", {"force_path_style": True}, "force_path_style=True")],
)
def test_addressing_a_directory_bucket_cannot_have_is_refused_before_any_request(
    express_bucket, endpoint_host, config, reason
):
    server = express_bucket.server
    client = client_for(f"http://{endpoint_host}:{server.port}", **config)
    with pytest.raises(ValueError, match=f"addressed only as <bucket>.<endpoint host>, and .*{reason}"):
        client.head_object(express_bucket.name, "k")
    assert server.exchanges() == []


def test_any_prefix_lists_though_s3_express_takes_only_folders(express_bucket):
    server, bucket = express_bucket.server, express_bucket.name
    client = client_for(server.endpoint)
    for key in ["img/train-1", "img/train-2", "img/test-1", "img/sub/x", "imgs/other", "top"]:
        put(client, bucket, key, b"")

    assert sorted(keys(client, bucket, "img/train-")) == ["img/train-1", "img/train-2"]
    assert sorted(keys(client, bucket, "im")) == ["img/sub/x", "img/test-1", "img/train-1", "img/train-2", "imgs/other"]
    pages = list(client.list_objects(bucket, "img/", "/"))
    assert [p for page in pages for p in page.common_prefixes] == ["img/sub/"]
    pages = list(client.list_objects(bucket, "img/s", "/"))
    assert [p for page in pages for p in page.common_prefixes] == ["img/sub/"]
    assert [info.key for page in pages for info in page.object_info] == []
    assert server.refused() == []  # the server takes only prefixes ending in "/", as S3 Express does

    with pytest.raises(ValueError, match="group keys only by '/'"):
        keys(client, bucket, "img/", "-")


def test_requester_pays_is_left_off_directory_bucket_listings(express_bucket):
    server, bucket = express_bucket.server, express_bucket.name
    client = client_for(server.endpoint, requester_pays=True)
    put(client, bucket, "d/k", b"paid")
    assert keys(client, bucket, "d/") == ["d/k"]
    assert client.get_object(bucket, "d/k").read() == b"paid"
    assert server.refused() == []
    payer = {
        e.method + (" list" if "list-type" in e.target else ""): "x-amz-request-payer" in e.headers
        for e in server.exchanges()
        if e.action == "forward"
    }
    assert payer == {"PUT": True, "GET list": False, "GET": True}
