"""What S3Client reports when things go wrong: S3 errors, unreachable or non-S3 endpoints, bad arguments."""

import functools
import http.server
import threading
import uuid

import pytest
from deadline import call_with_deadline, raises_s3_exception

import s3torchconnector
from s3torchconnector import S3Exception
from s3torchconnector._s3client import S3Client, S3ClientConfig

MIB = 1024 * 1024
PART = 5 * MIB
REFUSING_ENDPOINT = "http://127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture(scope="module")
def client(s3_endpoint) -> S3Client:
    return S3Client("us-east-1", endpoint=s3_endpoint, s3client_config=S3ClientConfig(part_size=PART))


@pytest.fixture
def missing_bucket() -> str:
    return f"missing-{uuid.uuid4().hex[:12]}"


def write_object(client, bucket, key, size):
    with client.put_object(bucket, key) as writer:
        writer.write(b"x" * size)


# ---------------------------------------------------------------- S3 error responses


def test_s3_exception_is_exported():
    assert issubclass(S3Exception, Exception)
    assert S3Exception is s3torchconnector.s3exception.S3Exception


def test_get_missing_key(s3, client):
    error = raises_s3_exception(lambda: client.get_object(s3.bucket, "no/such key").read())
    assert error.code == "NoSuchKey"
    assert error.status == 404
    # Generic code that knows files works: a missing key is also a FileNotFoundError.
    assert isinstance(error, FileNotFoundError) and isinstance(error, s3torchconnector.NoSuchKeyError)
    assert error.bucket == s3.bucket
    assert error.key == "no/such key"
    assert error.operation == "GetObject"
    assert s3.uri("no/such key") in str(error)


def test_ranged_get_missing_key(s3, client):
    error = raises_s3_exception(lambda: client._get_object_stream(s3.bucket, "nokey", 0, 10).read_all_bytes())
    assert (error.code, error.status, error.bucket, error.key) == ("NoSuchKey", 404, s3.bucket, "nokey")
    assert s3.uri("nokey") in str(error)


@pytest.mark.parametrize("span", [(None, None), (0, 100)], ids=["whole-object", "ranged"])
@pytest.mark.parametrize("whole", [False, True], ids=["streaming", "whole"])
@pytest.mark.parametrize("how", ["info", "read_all_bytes", "next_chunk", "readinto"])
def test_native_stream_missing_key_raises_from_every_read(s3, how, whole, span):
    native = S3Client("us-east-1", endpoint=s3.endpoint)._client
    # Repeated: the answer must not depend on how the response races the call.
    for attempt in range(15):
        stream = native.get_object(s3.bucket, "nokey", *span, whole)
        calls = {
            "info": stream.info,
            "read_all_bytes": stream.read_all_bytes,
            "next_chunk": stream.next_chunk,
            "readinto": functools.partial(stream.readinto, bytearray(10)),
        }
        outcome = call_with_deadline(calls[how])
        assert "error" in outcome, (
            f"attempt {attempt}: {how}() of a missing key returned {outcome.get('value')!r} instead of raising"
        )
        error = outcome["error"]
        assert isinstance(error, S3Exception), repr(error)
        assert (error.code, error.status) == ("NoSuchKey", 404)


def test_head_missing_key(s3, client):
    error = raises_s3_exception(lambda: client.head_object(s3.bucket, "nokey"))
    assert (error.code, error.status, error.bucket, error.key) == ("NoSuchKey", 404, s3.bucket, "nokey")
    assert error.operation == "HeadObject"
    assert s3.uri("nokey") in str(error)


def test_reader_size_of_missing_key(s3, client):
    reader = client.get_object(s3.bucket, "nokey")
    error = raises_s3_exception(lambda: reader.seek(0, 2))  # SEEK_END needs the size: a HEAD
    assert error.status == 404


def test_get_missing_bucket(client, missing_bucket):
    error = raises_s3_exception(lambda: client.get_object(missing_bucket, "k").read())
    assert (error.code, error.status, error.bucket) == ("NoSuchBucket", 404, missing_bucket)
    assert missing_bucket in str(error)


def test_ranged_get_missing_bucket(client, missing_bucket):
    error = raises_s3_exception(lambda: client._get_object_stream(missing_bucket, "k", 0, 10).read_all_bytes())
    assert (error.code, error.status, error.bucket) == ("NoSuchBucket", 404, missing_bucket)


def test_list_missing_bucket(client, missing_bucket):
    error = raises_s3_exception(lambda: list(client.list_objects(missing_bucket)))
    assert (error.code, error.status, error.bucket) == ("NoSuchBucket", 404, missing_bucket)
    assert error.operation == "ListObjectsV2"
    assert missing_bucket in str(error)


@pytest.mark.parametrize("size", [10, 2 * PART + 1], ids=["single-put", "multipart"])
def test_put_missing_bucket(client, missing_bucket, size):
    error = raises_s3_exception(lambda: write_object(client, missing_bucket, "k", size))
    assert (error.code, error.status, error.bucket, error.key) == ("NoSuchBucket", 404, missing_bucket, "k")
    assert error.operation == "PutObject"


def test_delete_missing_bucket(client, missing_bucket):
    error = raises_s3_exception(lambda: client.delete_object(missing_bucket, "k"))
    assert (error.code, error.status) == ("NoSuchBucket", 404)


def test_copy_missing_source(s3, client):
    error = raises_s3_exception(lambda: client.copy_object(s3.bucket, "no-source", s3.bucket, "dst"))
    assert (error.code, error.status) == ("NoSuchKey", 404)
    assert s3.uri("no-source") in str(error), "the error must name the object that is missing"
    assert s3.keys() == []


def test_copy_to_missing_bucket(s3, client, missing_bucket):
    s3.put("src", b"1")
    error = raises_s3_exception(lambda: client.copy_object(s3.bucket, "src", missing_bucket, "dst"))
    assert (error.code, error.status) == ("NoSuchBucket", 404)


def test_client_works_after_errors(s3, client):
    for _ in range(3):
        raises_s3_exception(lambda: client.get_object(s3.bucket, "nokey").read())
    s3.put("k", b"fine")
    assert client.get_object(s3.bucket, "k").read() == b"fine"


class ServerResponses:
    """The responses the in-process local server sends: (method, path, status code, headers).

    moto names its request id header x-amzn-requestid (and repeats it in an error body's
    <RequestId>); S3 sends x-amz-request-id. With ``like_s3`` the id is also sent under S3's name."""

    def __init__(self, monkeypatch):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        self.sent = []
        self.like_s3 = False
        serve = DomainDispatcherApplication.__call__

        def recording(app, environ, start_response):
            def start(status, headers, *args):
                headers = list(headers)
                named = {name.lower(): value for name, value in headers}
                if self.like_s3 and "x-amzn-requestid" in named:
                    headers.append(("x-amz-request-id", named["x-amzn-requestid"]))
                self.sent.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], int(status.split()[0]), named))
                return start_response(status, headers, *args)

            return serve(app, environ, start)

        monkeypatch.setattr(DomainDispatcherApplication, "__call__", recording)

    def request_ids(self, method, key, status):
        return [
            headers["x-amzn-requestid"]
            for sent_method, path, sent_status, headers in self.sent
            if (sent_method, sent_status) == (method, status) and path.endswith("/" + key)
        ]


@pytest.fixture
def responses(monkeypatch) -> ServerResponses:
    return ServerResponses(monkeypatch)


def test_error_carries_the_request_id_the_server_sent(s3, client, responses):
    """The request id is what AWS support asks for: it must be the one of the failed response
    (here read from the error body, as moto sends no x-amz-request-id), and in the message."""
    error = raises_s3_exception(lambda: client.get_object(s3.bucket, "no/such key").read())
    assert error.status == 404
    sent = responses.request_ids("GET", "no/such key", 404)
    assert len(sent) == 1 and sent[0], responses.sent
    assert error.request_id == sent[0]
    assert f"request id {sent[0]}" in str(error)


def test_error_without_a_body_carries_the_request_id_header(s3, client, responses):
    """A HEAD error has no body: the id comes from the x-amz-request-id header S3 sends with it."""
    responses.like_s3 = True
    error = raises_s3_exception(lambda: client.head_object(s3.bucket, "nokey"))
    assert error.status == 404
    sent = responses.request_ids("HEAD", "nokey", 404)
    assert len(sent) == 1 and sent[0], responses.sent
    assert error.request_id == sent[0]
    assert f"request id {sent[0]}" in str(error)


@pytest.mark.parametrize("like_s3", [False, True], ids=["moto-headers", "s3-headers"])
def test_get_404_message_is_well_formed(s3, client, responses, like_s3):
    responses.like_s3 = like_s3
    error = raises_s3_exception(lambda: client.get_object(s3.bucket, "no/such key").read())
    sent = responses.request_ids("GET", "no/such key", 404)
    assert len(sent) == 1 and sent[0], responses.sent
    assert error.request_id == sent[0]
    assert (
        str(error)
        == f"NoSuchKey: s3://{s3.bucket}/no/such key does not exist (Service error: The key does not exist; HTTP 404, request id {sent[0]})"
    )


@pytest.mark.parametrize("like_s3", [False, True], ids=["moto-headers", "s3-headers"])
def test_head_404_message_is_well_formed(s3, client, responses, like_s3):
    """No body: the id is the x-amz-request-id header (S3), else x-amzn-requestid (moto's name)."""
    responses.like_s3 = like_s3
    error = raises_s3_exception(lambda: client.head_object(s3.bucket, "nokey"))
    sent = responses.request_ids("HEAD", "nokey", 404)
    assert len(sent) == 1 and sent[0], responses.sent
    assert error.request_id == sent[0]
    assert (
        str(error)
        == f"NoSuchKey: s3://{s3.bucket}/nokey does not exist (Service error: The object was not found; HTTP 404, request id {sent[0]})"
    )


class ThrottlingServer:
    """Answers every request with 503 SlowDown, each with its own x-amz-request-id (ATTEMPT-1, ...)."""

    def __init__(self):
        self.sent = []
        lock = threading.Lock()
        sent = self.sent

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with lock:
                    request_id = f"ATTEMPT-{len(sent) + 1}"
                    sent.append(request_id)
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                    f"<Message>Please reduce your request rate.</Message><RequestId>{request_id}</RequestId></Error>"
                ).encode()
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("x-amz-request-id", request_id)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def throttling_server():
    server = ThrottlingServer()
    yield server
    server.close()


@pytest.mark.parametrize("max_attempts", [1, 3])
@pytest.mark.parametrize("operation", ["GetObject", "HeadObject"])
def test_throttled_until_retries_run_out_names_the_last_request_id(throttling_server, operation, max_attempts):
    """The CRT reports exhausted retries by its own error code, without the last response: its status
    and request id must still reach the exception, in a well-formed message."""
    c = S3Client(
        "us-east-1", endpoint=throttling_server.endpoint, s3client_config=S3ClientConfig(max_attempts=max_attempts)
    )
    calls = {
        "GetObject": lambda: c.get_object("bucket", "key").read(),
        "HeadObject": lambda: c.head_object("bucket", "key"),
    }
    error = raises_s3_exception(calls[operation])
    sent = throttling_server.sent
    assert len(sent) == max_attempts, sent
    assert error.request_id == sent[-1], (error.request_id, str(error))
    assert (error.code, error.status) == ("SlowDown", 503), str(error)
    attempts = "1 attempt" if max_attempts == 1 else f"{max_attempts} attempts"
    assert str(error) == (
        f"SlowDown: {operation} of s3://bucket/key failed (HTTP 503, request id {sent[-1]}; "
        f"gave up after up to {attempts})"
    )


# ---------------------------------------------------------------- unreachable endpoint


@pytest.fixture(scope="module")
def refusing_client() -> S3Client:
    return S3Client("us-east-1", endpoint=REFUSING_ENDPOINT, s3client_config=S3ClientConfig(max_attempts=2))


@pytest.mark.parametrize("operation", ["get", "ranged-get", "head", "list", "put", "put-multipart", "delete"])
def test_connection_refused(refusing_client, operation):
    c = refusing_client
    calls = {
        "get": lambda: c.get_object("bucket", "key").read(),
        "ranged-get": lambda: c._get_object_stream("bucket", "key", 0, 10).read_all_bytes(),
        "head": lambda: c.head_object("bucket", "key"),
        "list": lambda: list(c.list_objects("bucket")),
        "put": lambda: write_object(c, "bucket", "key", 10),
        "put-multipart": lambda: write_object(c, "bucket", "key", PART + 1),
        "delete": lambda: c.delete_object("bucket", "key"),
    }
    error = raises_s3_exception(calls[operation])
    assert "127.0.0.1:1" in str(error)
    assert "refused" in str(error).lower()
    assert error.status == 0
    assert error.bucket == "bucket"


def test_connection_refused_single_attempt():
    c = S3Client("us-east-1", endpoint=REFUSING_ENDPOINT, s3client_config=S3ClientConfig(max_attempts=1))
    error = raises_s3_exception(lambda: c.head_object("bucket", "key"))
    assert REFUSING_ENDPOINT in str(error)


# ---------------------------------------------------------------- an endpoint that is not S3


def html_server(protocol: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = protocol
        body = b"<html><body><h1>Welcome</h1>This is not S3.</body></html>"

        def _answer(self, send_body=True):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            if send_body:
                self.wfile.write(self.body)

        def do_HEAD(self):
            self._answer(send_body=False)

        do_GET = do_PUT = do_POST = do_DELETE = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module", params=["HTTP/1.1", "HTTP/1.0"])
def html_client(request):
    server = html_server(request.param)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    yield S3Client("us-east-1", endpoint=endpoint, s3client_config=S3ClientConfig(part_size=PART, max_attempts=1))
    server.shutdown()
    server.server_close()


def test_not_s3_list(html_client):
    error = raises_s3_exception(lambda: list(html_client.list_objects("bucket", prefix="p/")))
    assert error.bucket == "bucket"
    assert "s3://bucket/p/" in str(error)
    assert "S3" in str(error)


@pytest.mark.parametrize("read", ["reader", "ranged-small", "ranged-large"])
def test_not_s3_get(html_client, read):
    calls = {
        "reader": lambda: html_client.get_object("bucket", "key").read(),
        "ranged-small": lambda: bytes(html_client._get_object_stream("bucket", "key", 0, 10).read_all_bytes()),
        "ranged-large": lambda: bytes(html_client._get_object_stream("bucket", "key", 0, 1000).read_all_bytes()),
    }
    error = raises_s3_exception(calls[read])
    assert (error.bucket, error.key, error.operation) == ("bucket", "key", "GetObject")
    assert "s3://bucket/key" in str(error) or "127.0.0.1" in str(error)


def test_not_s3_multipart_put(html_client):
    error = raises_s3_exception(lambda: write_object(html_client, "bucket", "key", PART + 1))
    assert (error.bucket, error.key, error.operation) == ("bucket", "key", "PutObject")


# ---------------------------------------------------------------- bad arguments, refused before any request


# A client whose every request would fail with an S3Exception: a TypeError/ValueError proves that
# the argument was rejected before anything was sent.
@pytest.fixture(scope="module")
def offline() -> S3Client:
    return S3Client("us-east-1", endpoint=REFUSING_ENDPOINT, s3client_config=S3ClientConfig(max_attempts=1))


BAD_BUCKETS = [
    ("", ValueError),
    ("bad bucket", ValueError),
    ("bucket/with/slash", ValueError),
    ("-leading-dash", ValueError),
    ("bücket", ValueError),
    ("b" * 256, ValueError),
    (None, TypeError),
    (123, TypeError),
    (b"bucket", TypeError),
]
BAD_KEYS = [
    ("", ValueError),
    ("k" * 1025, ValueError),
    ("ü" * 513, ValueError),  # 1026 UTF-8 bytes
    (None, TypeError),
    (5, TypeError),
    (b"key", TypeError),
]


def operations(client, bucket, key):
    return {
        "get_object": lambda: client.get_object(bucket, key),
        "put_object": lambda: client.put_object(bucket, key),
        "head_object": lambda: client.head_object(bucket, key),
        "delete_object": lambda: client.delete_object(bucket, key),
        "copy_object-source": lambda: client.copy_object(bucket, key, "good-bucket", "good-key"),
        "copy_object-destination": lambda: client.copy_object("good-bucket", "good-key", bucket, key),
    }


@pytest.mark.parametrize("bucket,expected", BAD_BUCKETS, ids=repr)
@pytest.mark.parametrize("operation", list(operations(None, "b", "k")) + ["list_objects"])
def test_bad_bucket(offline, operation, bucket, expected):
    calls = operations(offline, bucket, "key")
    calls["list_objects"] = lambda: offline.list_objects(bucket)
    with pytest.raises(expected) as raised:
        calls[operation]()
    if expected is ValueError:
        assert repr(bucket) in str(raised.value), "the error names the bad bucket"


@pytest.mark.parametrize("key,expected", BAD_KEYS, ids=lambda v: repr(v)[:20])
@pytest.mark.parametrize("operation", list(operations(None, "b", "k")))
def test_bad_key(offline, operation, key, expected):
    with pytest.raises(expected):
        operations(offline, "bucket", key)[operation]()


def test_longest_key_is_accepted(s3, client):
    key = "k" * 1024
    write_object(client, s3.bucket, key, 3)
    assert s3.get(key) == b"xxx"


@pytest.mark.parametrize(
    "start,end",
    [(-1, None), (None, -1), (-5, -1), (10, 5), (1, 0)],
)
def test_bad_range(offline, start, end):
    with pytest.raises(ValueError):
        offline._get_object_stream("bucket", "key", start, end)


def test_native_bad_range():
    native = S3Client("us-east-1", endpoint=REFUSING_ENDPOINT, s3client_config=S3ClientConfig(max_attempts=1))._client
    with pytest.raises(ValueError):
        native.get_object("bucket", "key", 10, 5, False)
    with pytest.raises(TypeError):
        native.get_object("bucket", "key", -1, None, False)


@pytest.mark.parametrize("max_keys", [0, -1, 1001, 5000, True, 1.5, "10", None])
def test_bad_max_keys(offline, max_keys):
    with pytest.raises(ValueError):
        offline.list_objects("bucket", max_keys=max_keys)


@pytest.mark.parametrize("argument", ["prefix", "delimiter"])
@pytest.mark.parametrize("value", [None, 5, b"p/"])
def test_bad_prefix_or_delimiter(offline, argument, value):
    with pytest.raises(TypeError):
        offline.list_objects("bucket", **{argument: value})


@pytest.mark.parametrize("storage_class", ["", 5, b"STANDARD"])
def test_bad_storage_class(offline, storage_class):
    with pytest.raises(ValueError):
        offline.put_object("bucket", "key", storage_class=storage_class)


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"region": ""}, ValueError),
        ({"region": None}, ValueError),
        ({"region": 5}, ValueError),
        ({"region": "us-east-1", "endpoint": 5}, TypeError),
        ({"region": "us-east-1", "endpoint": b"http://x"}, TypeError),
        ({"region": "us-east-1", "s3client_config": {"part_size": PART}}, TypeError),
    ],
)
def test_bad_client_arguments(kwargs, expected):
    region = kwargs.pop("region")
    with pytest.raises(expected):
        S3Client(region, **kwargs)


@pytest.mark.parametrize("endpoint", ["ftp://host", "not a url", "s3://bucket", "http://"])
def test_bad_endpoint(endpoint):
    client = S3Client("us-east-1", endpoint=endpoint)
    with pytest.raises(ValueError) as raised:
        client.head_object("bucket", "key")
    assert endpoint in str(raised.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"part_size": 0},
        {"part_size": 5 * 1024 * MIB + 1},  # above S3's 5 GiB
        {"max_attempts": 0},
        {"throughput_target_gbps": 0},
        {"unsigned": True, "requester_pays": True},
    ],
)
def test_bad_config_values(kwargs):
    with pytest.raises(ValueError):
        S3ClientConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"part_size": float(PART)},
        {"part_size": str(PART)},
        {"max_attempts": 2.0},
        {"unsigned": 1},
        {"force_path_style": "yes"},
        {"profile": 5},
        {"requester_pays": None},
    ],
)
def test_bad_config_types(kwargs):
    with pytest.raises(TypeError):
        S3ClientConfig(**kwargs)
