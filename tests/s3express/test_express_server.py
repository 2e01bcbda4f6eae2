"""The S3 Express test server, checked with an independent client: botocore/boto3's own S3 Express
support (CreateSession, then ``s3express`` signatures with the session's keys), and requests signed
here with botocore's signers for what boto3 would never send (plain SigV4, another bucket's session,
a tampered signature, an expired session)."""

import base64
import http.client
import re
import urllib.parse
import zlib

import boto3
import pytest
from botocore.auth import S3ExpressAuth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.utils import percent_encode_sequence

from .conftest import REGION, directory_bucket_name, moto_client
from .express_server import (
    ExpressServer,
    canonical_request,
    listing_order,
    parse_authorization,
    signature,
    string_to_sign,
)


@pytest.fixture
def client_for(localhost_subdomains):
    """``client_for(server, secret_key=None, **s3_config)``: a boto3 client of the server's endpoint,
    with the environment's credentials (those the server checks CreateSession against) unless
    ``secret_key`` is given, and no retries. The test process resolves ``*.localhost``."""

    def make(server: ExpressServer, secret_key=None, **s3_config):
        config = Config(s3=s3_config, retries={"max_attempts": 1}) if s3_config else Config(retries={"max_attempts": 1})
        keys = {}
        if secret_key is not None:  # else boto3's own lookup: the environment's, as any client's
            keys = {"aws_access_key_id": server.access_key, "aws_secret_access_key": secret_key}
        return boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION, config=config, **keys)

    return make


def send(server: ExpressServer, bucket, method, path, auth, body=b"", host_port=True, before=None, change=None):
    """Signs ``method path`` for ``<bucket>.localhost`` with ``auth`` (a botocore signer; None: no
    signature), ``before(request)`` adding headers first and ``change(headers)`` altering them
    after; sends it to the server. (status, error code or None)."""
    host = f"{bucket}.localhost:{server.port}" if host_port else f"{bucket}.localhost"
    request = AWSRequest(method=method, url=f"http://{host}{path}", data=body)
    request.headers["Host"] = host
    if before is not None:
        before(request)
    if auth is not None:
        auth.add_auth(request)
    headers = {name: value for name, value in request.headers.items()}
    if change is not None:
        change(headers)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    code = re.search(rb"<Code>(.*?)</Code>", payload)
    return response.status, code.group(1).decode() if code else None


def session_auth(session) -> S3ExpressAuth:
    """botocore's S3 Express signer with an issued session's keys (it adds x-amz-s3session-token)."""
    credentials = Credentials(session.access_key_id, session.secret_access_key, session.token)
    return S3ExpressAuth(credentials, "s3express", REGION, identity_cache=None)


def user_credentials(server: ExpressServer) -> Credentials:
    return Credentials(server.access_key, server.secret_key)


def server_upstream(server: ExpressServer) -> str:
    return f"http://{server.upstream_host}:{server.upstream_port}"


# ---------------------------------------------------------------------- the happy path, with boto3


def test_boto3_put_get_list_delete_with_one_session(express_bucket, client_for):
    server, bucket = express_bucket.server, express_bucket.name
    client = client_for(server)
    keys = ["plain", "with space/and+plus", "tilde~and=equals&amp", "ünïcode/ključ"]
    for index, key in enumerate(keys):
        client.put_object(Bucket=bucket, Key=key, Body=f"body {index}".encode())
    for index, key in enumerate(keys):
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == f"body {index}".encode()
    assert client.head_object(Bucket=bucket, Key=keys[1])["ContentLength"] == len(b"body 1")
    listed = client.list_objects_v2(Bucket=bucket, Prefix="with space/", StartAfter="a")
    assert [item["Key"] for item in listed["Contents"]] == [keys[1]]
    client.delete_object(Bucket=bucket, Key=keys[0])
    with pytest.raises(ClientError) as missing:
        client.get_object(Bucket=bucket, Key=keys[0])
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"

    assert server.refused() == []
    assert server.sessions_created(bucket) == 1
    (session,) = server.sessions(bucket)
    exchanges = server.exchanges()
    assert [e.action for e in exchanges][:2] == ["create-session", "forward"]
    assert all(e.action == "forward" for e in exchanges[1:])
    # boto3 signed every data request with the session's keys, for s3express, the token among them
    for exchange in exchanges[1:]:
        auth = parse_authorization(exchange.headers["authorization"])
        assert (auth.access_key, auth.service) == (session.access_key_id, "s3express")
        assert "x-amz-s3session-token" in auth.signed_headers
        assert exchange.headers["x-amz-s3session-token"] == session.token
    # and the objects are in moto, under the directory bucket's own name
    assert moto_client(server_upstream(server)).get_object(Bucket=bucket, Key=keys[2])["Body"].read() == b"body 2"


def test_create_session_answer_is_what_boto3_reads(express_bucket, client_for):
    server, bucket = express_bucket.server, express_bucket.name
    credentials = client_for(server).create_session(Bucket=bucket)["Credentials"]
    (session,) = server.sessions(bucket)
    assert credentials["AccessKeyId"] == session.access_key_id
    assert credentials["SecretAccessKey"] == session.secret_access_key
    assert credentials["SessionToken"] == session.token
    assert credentials["Expiration"].timestamp() == session.expires_at  # parsed as UTC
    # a second session is a different one
    client_for(server).create_session(Bucket=bucket)
    first, second = server.sessions(bucket)
    assert len({first.token, second.token}) == 2 and first.access_key_id != second.access_key_id


def test_multipart_upload_through_the_server(express_bucket, client_for):
    server, bucket = express_bucket.server, express_bucket.name
    client = client_for(server)
    part = b"x" * (5 * 1024 * 1024)
    upload = client.create_multipart_upload(Bucket=bucket, Key="big")
    etags = [
        client.upload_part(Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=n, Body=body)["ETag"]
        for n, body in ((1, part), (2, b"tail"))
    ]
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": n + 1} for n, etag in enumerate(etags)]},
    )
    assert client.head_object(Bucket=bucket, Key="big")["ContentLength"] == len(part) + 4
    assert server.refused() == [] and server.sessions_created(bucket) == 1


def test_aws_chunked_upload_with_unsigned_trailer(express_bucket, client_for):
    """What the AWS CRT sends for an upload: STREAMING-UNSIGNED-PAYLOAD-TRAILER, an aws-chunked body
    ending in a checksum trailer. The signature covers the header as given; the body goes to moto as
    is, which decodes it."""
    server, bucket = express_bucket.server, express_bucket.name
    client = client_for(server)
    client.create_session(Bucket=bucket)
    (session,) = server.sessions(bucket)
    data = b"0123456789" * 1000
    checksum = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (data[:8192], data[8192:]))
    body += f"0\r\nx-amz-checksum-crc32:{checksum}\r\n\r\n".encode()

    def chunked_headers(request):
        request.headers["Content-Encoding"] = "aws-chunked"
        request.headers["x-amz-decoded-content-length"] = str(len(data))
        # botocore's own way to a trailer checksum: its signer then sets STREAMING-UNSIGNED-PAYLOAD-TRAILER
        request.context["checksum"] = {"request_algorithm": {"in": "trailer", "algorithm": "crc32"}}
        request.headers["x-amz-trailer"] = "x-amz-checksum-crc32"

    assert send(server, bucket, "PUT", "/chunked", session_auth(session), body=body, before=chunked_headers) == (
        200,
        None,
    )
    assert client.get_object(Bucket=bucket, Key="chunked")["Body"].read() == data
    (upload,) = [e for e in server.exchanges() if e.method == "PUT"]
    assert upload.headers["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert upload.trailers == {"x-amz-checksum-crc32": checksum}


def test_host_without_port_is_accepted(express_bucket, client_for):
    server, bucket = express_bucket.server, express_bucket.name
    client_for(server).put_object(Bucket=bucket, Key="k", Body=b"v")
    (session,) = server.sessions(bucket)
    assert send(server, bucket, "GET", "/k", session_auth(session), host_port=False) == (200, None)


# ---------------------------------------------------------------------- the signer against botocore's


@pytest.mark.parametrize(
    "method, path, params, headers",
    [
        ("GET", "/", {"session": ""}, {}),
        ("GET", "/", {"list-type": "2", "prefix": "a b/ü+~*", "start-after": "x=y&z", "max-keys": "3"}, {}),
        ("PUT", "/dir/a%20b%2Bc~%C3%BC", {"partNumber": "2", "uploadId": "A/b+C=="}, {"X-Amz-Meta-Note": "  a   b  "}),
        ("DELETE", "/k", {}, {"Content-Type": "text/plain", "x-amz-s3session-token": "t+k/n=="}),
    ],
)
def test_canonical_request_is_botocores(method, path, params, headers):
    """Our canonical request, from the request as it goes on the wire, is the one botocore signed, and
    so is our signature."""
    signer = S3SigV4Auth(Credentials("AKID", "SECRET"), "s3express", REGION)
    theirs = []
    botocores = signer.canonical_request
    signer.canonical_request = lambda request: theirs.append(botocores(request)) or theirs[-1]
    # the query as botocore's request pipeline puts it in the URL (AWSRequest's own params= would
    # form-encode spaces as "+", which botocore never sends)
    query = percent_encode_sequence(params)
    url = f"http://b--use1-az4--x-s3.localhost:1234{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=headers)
    signer.add_auth(request)
    wire = urllib.parse.urlsplit(request.prepare().url)
    auth = parse_authorization(request.headers["Authorization"])
    sent = {name.lower(): value for name, value in request.headers.items()}
    sent["host"] = "b--use1-az4--x-s3.localhost:1234"
    ours = canonical_request(method, wire.path, wire.query, sent, auth.signed_headers, sent["x-amz-content-sha256"])
    assert [ours] == theirs
    to_sign = string_to_sign(sent["x-amz-date"], auth.scope, ours)
    assert signature("SECRET", auth.date, REGION, "s3express", to_sign) == auth.signature


# ---------------------------------------------------------------------- refusals


def test_plain_sigv4_without_session_is_refused(express_bucket, client_for):
    server, bucket = express_bucket.server, express_bucket.name
    client_for(server).put_object(Bucket=bucket, Key="k", Body=b"v")
    status, code = send(server, bucket, "GET", "/k", S3SigV4Auth(user_credentials(server), "s3", REGION))
    assert (status, code) == (403, "AccessDenied")
    assert "'s3'" in server.refused()[-1].reason

    # botocore's own S3 Express without sessions: s3express with the long-term keys, no token
    with pytest.raises(ClientError) as refused:
        client_for(server, disable_s3_express_session_auth=True).get_object(Bucket=bucket, Key="k")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert "x-amz-s3session-token" in server.refused()[-1].reason

    assert send(server, bucket, "GET", "/k", None) == (403, "AccessDenied")  # not signed at all
    assert send(server, bucket, "HEAD", "/k", None) == (403, None)  # the same, without a body
    assert len(server.refused()) == 4
    assert [e.action for e in server.exchanges() if e.target == "/k" and e.method != "PUT"] == ["refused"] * 4


def test_session_of_another_bucket_is_refused(express_server, s3_endpoint, client_for):
    first, second = directory_bucket_name(), directory_bucket_name()
    for bucket in (first, second):
        moto_client(s3_endpoint).create_bucket(Bucket=bucket)
    client = client_for(express_server)
    client.put_object(Bucket=first, Key="k", Body=b"first")
    client.put_object(Bucket=second, Key="k", Body=b"second")
    (first_session,) = express_server.sessions(first)

    assert send(express_server, first, "GET", "/k", session_auth(first_session)) == (200, None)
    assert send(express_server, second, "GET", "/k", session_auth(first_session)) == (403, "AccessDenied")
    refusal = express_server.refused()[-1]
    assert refusal.bucket == second and first in refusal.reason


def test_tampered_or_mismatched_signature_is_refused(express_bucket, client_for):
    server, bucket = express_bucket.server, express_bucket.name
    client_for(server).put_object(Bucket=bucket, Key="k", Body=b"v")
    (session,) = server.sessions(bucket)

    def flip_last_digit(headers):
        value = headers["Authorization"]
        headers["Authorization"] = value[:-1] + ("0" if value[-1] != "0" else "1")

    def other_date(headers):  # a signed header changed after signing: another second, same day
        value = headers["X-Amz-Date"]  # YYYYMMDDTHHMMSSZ
        headers["X-Amz-Date"] = value[:13] + ("01" if value[13:15] == "00" else "00") + "Z"

    def unsigned_token(headers):  # the token dropped from SignedHeaders
        headers["Authorization"] = headers["Authorization"].replace(";x-amz-s3session-token", "")

    def other_secret(headers):  # the session's access key and token, but not its secret
        request = AWSRequest(method="GET", url=f"http://{headers['Host']}/k")
        request.headers["Host"] = headers["Host"]
        wrong = Credentials(session.access_key_id, "not the session's secret", session.token)
        S3ExpressAuth(wrong, "s3express", REGION, identity_cache=None).add_auth(request)
        headers.clear()
        headers.update(request.headers.items())

    assert send(server, bucket, "GET", "/k", session_auth(session)) == (200, None)
    for change in (flip_last_digit, other_date, unsigned_token, other_secret):
        assert send(server, bucket, "GET", "/k", session_auth(session), change=change) == (403, "AccessDenied"), change
    reasons = [refusal.reason for refusal in server.refused()]
    assert len(reasons) == 4
    assert "signature does not match" in reasons[0] and "signature does not match" in reasons[1]
    assert "not among the signed headers" in reasons[2]
    assert "signature does not match" in reasons[3]

    # the path is signed: a signature for /k does not open /other
    request_for_k = AWSRequest(method="GET", url=f"http://{bucket}.localhost:{server.port}/k")
    request_for_k.headers["Host"] = f"{bucket}.localhost:{server.port}"
    session_auth(session).add_auth(request_for_k)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/other", headers=dict(request_for_k.headers.items()))
    assert connection.getresponse().status == 403
    connection.close()


def test_expired_session_is_refused(express_bucket, client_for):
    server, bucket = express_bucket.server, express_bucket.name
    client_for(server).put_object(Bucket=bucket, Key="k", Body=b"v")
    (session,) = server.sessions(bucket)
    assert send(server, bucket, "GET", "/k", session_auth(session)) == (200, None)
    assert server.expire_sessions(bucket) == 1
    assert send(server, bucket, "GET", "/k", session_auth(session)) == (400, "ExpiredToken")
    assert server.refused()[-1].code == "ExpiredToken"


def test_session_issued_already_expired_is_refused(s3_endpoint, express_server, client_for):
    """session_seconds=0: the Expiration is the issuing second itself, so the first use is late."""
    bucket = directory_bucket_name()
    moto_client(s3_endpoint).create_bucket(Bucket=bucket)
    with ExpressServer(
        s3_endpoint, access_key=express_server.access_key, secret_key=express_server.secret_key, session_seconds=0
    ) as server:
        client_for(server).create_session(Bucket=bucket)
        (session,) = server.sessions(bucket)
        assert send(server, bucket, "PUT", "/k", session_auth(session), body=b"v") == (400, "ExpiredToken")


def test_create_session_checks_the_user_and_the_bucket(express_bucket, client_for):
    server, bucket = express_bucket.server, express_bucket.name
    with pytest.raises(ClientError) as unknown:
        client_for(server).create_session(Bucket=directory_bucket_name())
    assert unknown.value.response["Error"]["Code"] == "NoSuchBucket"

    with pytest.raises(ClientError) as wrong_secret:
        client_for(server, secret_key=server.secret_key + "-wrong").create_session(Bucket=bucket)
    assert wrong_secret.value.response["Error"]["Code"] == "AccessDenied"
    assert "signature does not match" in server.refused()[-1].reason

    # long-term keys signed for "s3", not "s3express"
    assert send(server, bucket, "GET", "/?session", S3SigV4Auth(user_credentials(server), "s3", REGION)) == (
        403,
        "AccessDenied",
    )
    assert server.sessions_created(bucket) == 0


def test_path_style_request_is_refused(express_server):
    connection = http.client.HTTPConnection("127.0.0.1", express_server.port, timeout=10)
    connection.request("GET", "/some-bucket--use1-az4--x-s3/k", headers={"Host": f"localhost:{express_server.port}"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 400 and b"<Code>InvalidRequest</Code>" in body and b"virtual-hosted" in body


# ---------------------------------------------------------------------- listings


def test_listing_is_complete_but_not_lexicographic(express_bucket, client_for):
    server, bucket = express_bucket.server, express_bucket.name
    client = client_for(server)
    keys = [f"key-{index:02d}" for index in range(12)] + ["dir/a", "dir/b"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"")

    listed = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed) == sorted(keys)  # each key exactly once
    assert listed != sorted(listed)
    assert listed == sorted(keys, key=lambda key: listing_order(key.encode()))  # the documented order
    assert [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]] == listed  # deterministic

    # pages: each page reordered within itself, all pages together hold every key once
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 5})
    paged = [[item["Key"] for item in page["Contents"]] for page in pages]
    assert [len(page) for page in paged] == [5, 5, 4]
    assert sorted(key for page in paged for key in page) == sorted(keys)
    assert [sorted(page) for page in paged] == [sorted(keys)[0:5], sorted(keys)[5:10], sorted(keys)[10:]]

    # a delimited listing keeps its CommonPrefixes
    delimited = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in delimited["CommonPrefixes"]] == ["dir/"]
    assert sorted(item["Key"] for item in delimited["Contents"]) == sorted(keys[:12])
    assert server.refused() == []
