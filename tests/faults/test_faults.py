"""Faults between the client and S3 (through tests/faults/proxy.py): retried to the right bytes, or
an S3Exception that says why; never short, mixed or leaked data. Plus literal keys."""

import gc
import io
import signal
import subprocess
import sys
import textwrap
import time
from typing import Optional

import pytest
from deadline import DEADLINE, call_with_deadline, raises_s3_exception, returns  # noqa: F401 (used by other files)
from samples import keep_list, payload  # payload and sha: also imported from here by the other files
from samples import sha256 as sha
from torch.utils.data import DataLoader

from s3torchconnector import S3Exception, S3IterableDataset, S3MapDataset
from s3torchconnector._s3client import S3Client, S3ClientConfig
from s3torchconnector.s3reader import S3ReaderConstructor

from .proxy import FaultProxy, error, forward, reset, stall, trickle, truncate

MIB = 1024 * 1024
PART = 5 * MIB
SIZE = 3 * PART + 123_457  # three whole parts and a ragged one


# ---------------------------------------------------------------------- helpers


def client_for(proxy: FaultProxy, region: str, max_attempts: int = 10, **config) -> S3Client:
    return S3Client(
        region,
        endpoint=proxy.url,
        s3client_config=S3ClientConfig(part_size=PART, max_attempts=max_attempts, **config),
    )


# A connection moving under 64 KiB/s for 2 s is dropped: short enough for a test, far above a trickle.
STALL_SETTINGS = dict(stall_timeout_seconds=2, min_throughput_bytes_per_second=64 * 1024)


def ranged_get_of(bucket: str, key: str):
    path = f"/{bucket}/{key}"
    return lambda r: r.method == "GET" and r.path == path and r.range is not None and not r.query


class PartsOfGet:
    """Numbers the parts of the multi-part GETs of one object: the client picks the part size, and the
    first part's request (from byte 0, sent first to learn the object's size) shows it."""

    def __init__(self, bucket: str, key: str):
        self._is_ranged_get = ranged_get_of(bucket, key)
        self._part_size = None

    def number(self, request) -> Optional[int]:
        """0 for the first part, 1 for the second...; None for other requests."""
        if not self._is_ranged_get(request) or request.range_start is None:
            return None
        if request.range_start == 0:
            self._part_size = self._part_size or request.range_length
            return 0
        return request.range_start // self._part_size if self._part_size else None


def upload_part_of(bucket: str, key: str, part_numbers=None):
    path = f"/{bucket}/{key}"

    def match(r):
        return (
            r.is_upload_part()
            and r.path == path
            and (part_numbers is None or int(r.query["partNumber"]) in part_numbers)
        )

    return match


def read_sequential(client, bucket, key) -> bytes:
    reader = client.get_object(bucket, key, reader_constructor=S3ReaderConstructor.sequential())
    with reader:
        return bytes(reader.read())


def read_sequential_pieces(client, bucket, key) -> bytes:
    """The sequential reader's other way in: reads of pieces, each served once its bytes have landed
    while the rest of the object arrives in the background; the tail first, as torch.load does."""
    reader = client.get_object(bucket, key, reader_constructor=S3ReaderConstructor.sequential())
    with reader:
        reader.seek(-1000, io.SEEK_END)
        tail = reader.read()
        reader.seek(0)
        out = bytearray()
        while True:
            piece = reader.read(3 * MIB + 5)
            if not piece:
                break
            out += piece
    assert bytes(out[-1000:]) == tail, "the tail read on its own differs from the same bytes read in order"
    return bytes(out)


def read_range_based_whole(client, bucket, key) -> bytes:
    reader = client.get_object(bucket, key, reader_constructor=S3ReaderConstructor.range_based())
    with reader:
        return bytes(reader.read())


def read_range_based_pieces(client, bucket, key) -> bytes:
    """Small reads through the reader's buffer (its fills are concurrent 1 MiB ranged GETs)
    mixed with large reads that bypass it."""
    reader = client.get_object(bucket, key, reader_constructor=S3ReaderConstructor.range_based())
    out = bytearray()
    sizes = [777_777, 3 * MIB, 1_000_003, 9 * MIB]
    with reader:
        i = 0
        while True:
            piece = reader.read(sizes[i % len(sizes)])
            if not piece:
                break
            out += piece
            i += 1
    return bytes(out)


READERS = {
    "sequential": read_sequential,
    "sequential_pieces": read_sequential_pieces,
    "range_based": read_range_based_whole,
    "range_based_pieces": read_range_based_pieces,
}

GET_FAULTS = {
    "503_SlowDown": error(503, "SlowDown"),
    "500_InternalError": error(500, "InternalError"),
    "reset_before_headers": reset(),
    "truncated_body": truncate(1000),
    "truncated_body_empty": truncate(0),
}


def write(client, bucket, key, data: bytes) -> None:
    with client.put_object(bucket, key) as writer:
        view = memoryview(data)
        for start in range(0, len(data), 3 * MIB + 17):
            writer.write(view[start : start + 3 * MIB + 17])


# ---------------------------------------------------------------------- 1. GET with faults


@pytest.mark.parametrize("fault_name", sorted(GET_FAULTS))
@pytest.mark.parametrize("reader_name", sorted(READERS))
def test_get_survives_faults_on_every_second_part(s3, proxy, reader_name, fault_name):
    data = payload(SIZE, seed=1)
    s3.put("obj.bin", data)
    # The first attempt of every second ranged GET of the object fails.
    rule = proxy.add(
        lambda r: ranged_get_of(s3.bucket, "obj.bin")(r) and r.attempt == 0,
        GET_FAULTS[fault_name],
        when=lambda n: n % 2 == 1,
    )
    client = client_for(proxy, s3.region)

    got = returns(lambda: READERS[reader_name](client, s3.bucket, "obj.bin"))

    assert rule.fired >= 1, "the fault never fired: the test proved nothing"
    assert len(got) == len(data)
    assert sha(got) == sha(data)


def test_get_survives_faults_on_the_first_part_and_repeated_faults(s3, proxy):
    """The first part's request (which also tells the client the object's size) fails twice, and
    every other part fails once, each with a different fault."""
    data = payload(SIZE, seed=2)
    s3.put("obj.bin", data)
    is_part = ranged_get_of(s3.bucket, "obj.bin")
    parts = PartsOfGet(s3.bucket, "obj.bin")
    proxy.add(lambda r: parts.number(r) == 0 and r.attempt == 0, error(503, "SlowDown"))
    proxy.add(lambda r: parts.number(r) == 0 and r.attempt == 1, truncate(4096))
    proxy.add(lambda r: parts.number(r) == 1 and r.attempt == 0, reset())
    proxy.add(lambda r: parts.number(r) == 2 and r.attempt == 0, error(500, "InternalError"))
    proxy.add(lambda r: parts.number(r) == 3 and r.attempt == 0, truncate(10))
    client = client_for(proxy, s3.region)

    got = returns(lambda: read_sequential(client, s3.bucket, "obj.bin"))

    assert sha(got) == sha(data)
    faulted = [e for e in proxy.requests(is_part) if e.action != "forward"]
    assert len(faulted) == 5, [e.action for e in faulted]


# ---------------------------------------------------------------------- 2. PUT with faults


@pytest.mark.parametrize(
    "fault",
    [error(503, "SlowDown"), error(500, "InternalError"), reset(), reset(forward_first=True)],
    ids=["503", "500", "reset", "reset_after_server_got_it"],
)
def test_multipart_put_survives_faults_on_some_parts(s3, proxy, fault):
    data = payload(SIZE, seed=3)
    rule = proxy.add(lambda r: upload_part_of(s3.bucket, "up.bin", {2, 4})(r) and r.attempt == 0, fault)
    client = client_for(proxy, s3.region)

    returns(lambda: write(client, s3.bucket, "up.bin", data))

    assert rule.fired == 2
    stored = s3.get("up.bin")
    assert len(stored) == len(data)
    assert sha(stored) == sha(data)
    assert s3.multipart_uploads() == []


def test_single_put_survives_a_fault(s3, proxy):
    data = payload(PART // 2, seed=4)
    path = f"/{s3.bucket}/small.bin"
    rule = proxy.add(lambda r: r.method == "PUT" and r.path == path and r.attempt == 0, error(503, "SlowDown"))
    client = client_for(proxy, s3.region)

    returns(lambda: write(client, s3.bucket, "small.bin", data))

    assert rule.fired == 1
    assert sha(s3.get("small.bin")) == sha(data)


def test_multipart_put_failing_on_every_attempt_leaves_nothing(s3, proxy):
    data = payload(SIZE, seed=5)
    proxy.add(upload_part_of(s3.bucket, "up.bin", {2}), error(503, "SlowDown"))
    client = client_for(proxy, s3.region, max_attempts=2)

    caught = raises_s3_exception(lambda: write(client, s3.bucket, "up.bin", data))

    assert caught.bucket == s3.bucket and caught.key == "up.bin"
    attempts = proxy.requests(upload_part_of(s3.bucket, "up.bin", {2}))
    assert len(attempts) == 2, f"max_attempts=2 but part 2 was sent {len(attempts)} times"
    assert "up.bin" not in s3.keys()
    assert s3.multipart_uploads() == []


@pytest.mark.parametrize("how", ["abort", "drop"])
def test_an_upload_ended_while_its_create_is_in_flight_leaves_nothing(s3, proxy, how):
    """S3 answers CreateMultipartUpload late: the writer is aborted (or dropped) before the answer. A
    cancel then would cut the answer off, and the upload S3 made could never be aborted."""
    path = f"/{s3.bucket}/up.bin"
    is_create = lambda r: r.method == "POST" and r.path == path and "uploads" in r.query
    proxy.add(is_create, forward(before=lambda _request: time.sleep(1)))
    writer = client_for(proxy, s3.region).put_object(s3.bucket, "up.bin")
    writer.write(payload(PART + 1, seed=6))  # more than a part: the multipart upload starts
    assert proxy.wait_for(is_create, 1, DEADLINE)
    if how == "abort":
        returns(writer.abort)  # returns once the upload is aborted
        left = s3.multipart_uploads()
    else:
        del writer
        returns(gc.collect)
        left = s3.multipart_uploads()
        deadline = time.monotonic() + 10  # a dropped writer's abort finishes in the background
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = s3.multipart_uploads()
    assert "up.bin" not in s3.keys()
    assert left == []


def test_single_put_failing_on_every_attempt_leaves_nothing(s3, proxy):
    path = f"/{s3.bucket}/small.bin"
    proxy.add(lambda r: r.method == "PUT" and r.path == path, error(500, "InternalError"))
    client = client_for(proxy, s3.region, max_attempts=2)

    caught = raises_s3_exception(lambda: write(client, s3.bucket, "small.bin", payload(1000, seed=6)))

    assert len(proxy.requests(lambda r: r.method == "PUT" and r.path == path)) == 2
    assert s3.keys() == []
    assert (caught.code, caught.status) == ("InternalError", 500), str(caught)


# ---------------------------------------------------------------------- 3. retries exhausted


def test_exhausted_get_names_operation_uri_and_last_error(s3, proxy):
    s3.put("obj.bin", payload(SIZE, seed=7))
    proxy.add(ranged_get_of(s3.bucket, "obj.bin"), error(503, "SlowDown"))
    client = client_for(proxy, s3.region, max_attempts=3)

    caught = raises_s3_exception(lambda: read_sequential(client, s3.bucket, "obj.bin"))

    message = str(caught)
    assert caught.operation == "GetObject"
    assert caught.bucket == s3.bucket and caught.key == "obj.bin"
    assert "GetObject" in message
    assert f"s3://{s3.bucket}/obj.bin" in message
    assert "SlowDown" in message or "SLOW_DOWN" in message, message
    assert len(proxy.requests(ranged_get_of(s3.bucket, "obj.bin"))) == 3
    # S3Exception's documented attributes: the S3 error code and the HTTP status of the response.
    assert (caught.code, caught.status) == ("SlowDown", 503), message


def test_exhausted_put_names_operation_uri_and_last_error(s3, proxy):
    proxy.add(upload_part_of(s3.bucket, "up.bin"), error(500, "InternalError"))
    client = client_for(proxy, s3.region, max_attempts=2)

    caught = raises_s3_exception(lambda: write(client, s3.bucket, "up.bin", payload(SIZE, seed=8)))

    message = str(caught)
    assert caught.operation == "PutObject"
    assert f"s3://{s3.bucket}/up.bin" in message
    assert "PutObject" in message
    assert "InternalError" in message or "INTERNAL_ERROR" in message, message
    assert s3.keys() == [] and s3.multipart_uploads() == []
    assert (caught.code, caught.status) == ("InternalError", 500), message


def test_exhausted_connection_faults_name_uri_and_attempts(s3, proxy):
    s3.put("obj.bin", payload(1000, seed=9))
    proxy.add(ranged_get_of(s3.bucket, "obj.bin"), reset())
    client = client_for(proxy, s3.region, max_attempts=3)

    caught = raises_s3_exception(lambda: read_sequential(client, s3.bucket, "obj.bin"))

    message = str(caught)
    assert caught.operation == "GetObject" and caught.status == 0
    assert f"s3://{s3.bucket}/obj.bin" in message or s3.endpoint in message or "127.0.0.1" in message
    assert "3 attempts" in message


def test_exhausted_service_error_names_the_number_of_attempts(s3, proxy):
    """Issue 6: the error names the operation, the URI, the last error *and the number of attempts*."""
    s3.put("obj.bin", payload(1000, seed=10))
    proxy.add(ranged_get_of(s3.bucket, "obj.bin"), error(503, "SlowDown"))
    client = client_for(proxy, s3.region, max_attempts=3)

    caught = raises_s3_exception(lambda: read_sequential(client, s3.bucket, "obj.bin"))

    assert "3 attempts" in str(caught), str(caught)


# The x-amz-request-id the proxy sends with every error it injects (tests/faults/proxy.py).
PROXY_REQUEST_ID = "FAULTPROXY0000001"


@pytest.mark.parametrize(
    "status, code", [(503, "SlowDown"), (500, "InternalError")], ids=["503_SlowDown", "500_InternalError"]
)
def test_exhausted_service_error_message_is_well_formed_and_names_the_request_id(s3, proxy, status, code):
    """When retries run out the CRT reports only its own error code, without the last response's
    headers: the request id of that response must still reach the exception, and the message must
    keep the whole status and close its parenthesis."""
    s3.put("obj.bin", payload(1000, seed=11))
    proxy.add(ranged_get_of(s3.bucket, "obj.bin"), error(status, code))
    client = client_for(proxy, s3.region, max_attempts=3)

    caught = raises_s3_exception(lambda: read_sequential(client, s3.bucket, "obj.bin"))

    assert len(proxy.requests(ranged_get_of(s3.bucket, "obj.bin"))) == 3
    assert caught.request_id == PROXY_REQUEST_ID, (caught.request_id, str(caught))
    assert (caught.code, caught.status) == (code, status), str(caught)
    assert str(caught) == (
        f"{code}: GetObject of s3://{s3.bucket}/obj.bin failed "
        f"(HTTP {status}, request id {PROXY_REQUEST_ID}; gave up after up to 3 attempts)"
    )


def test_exhausted_put_part_names_the_request_id(s3, proxy):
    proxy.add(upload_part_of(s3.bucket, "up.bin", {2}), error(503, "SlowDown"))
    client = client_for(proxy, s3.region, max_attempts=2)

    caught = raises_s3_exception(lambda: write(client, s3.bucket, "up.bin", payload(SIZE, seed=12)))

    assert caught.request_id == PROXY_REQUEST_ID, (caught.request_id, str(caught))
    assert str(caught) == (
        f"SlowDown: PutObject of s3://{s3.bucket}/up.bin failed "
        f"(HTTP 503, request id {PROXY_REQUEST_ID}; gave up after up to 2 attempts)"
    )


# ---------------------------------------------------------------------- 4. overwritten mid-GET


@pytest.mark.parametrize("reader_name", ["sequential", "sequential_pieces", "range_based", "range_based_pieces"])
def test_object_overwritten_between_parts_raises(s3, proxy, reader_name):
    old = payload(SIZE, seed=11)
    new = payload(SIZE, seed=12)
    s3.put("obj.bin", old)

    def overwrite(_request):
        s3.put("obj.bin", new)

    is_part = ranged_get_of(s3.bucket, "obj.bin")
    rule = proxy.add(
        lambda r: is_part(r) and r.range_start is not None and r.range_start >= PART,
        forward(before=overwrite),
        limit=1,
    )
    client = client_for(proxy, s3.region)

    outcome = call_with_deadline(lambda: READERS[reader_name](client, s3.bucket, "obj.bin"))

    assert rule.fired == 1
    if "value" in outcome:
        got = outcome["value"]
        which = "the old version" if got == old else "the new version" if got == new else "a MIX of versions"
        pytest.fail(f"the read returned {len(got)} bytes ({which}) instead of raising S3Exception")
    caught = outcome["error"]
    assert isinstance(caught, S3Exception), f"{type(caught).__name__}: {caught}"
    assert caught.bucket == s3.bucket and caught.key == "obj.bin"
    assert f"s3://{s3.bucket}/obj.bin" in str(caught)


@pytest.mark.parametrize("buffer_size", [0, MIB], ids=["unbuffered", "buffered"])
def test_range_based_reader_refuses_an_object_overwritten_between_reads(s3, proxy, buffer_size):
    """Separate reads of one reader are separate requests: each must still read the version the
    first one saw, or fail, never mix two versions."""
    old, new = payload(4 * MIB, seed=19), payload(4 * MIB, seed=20)
    s3.put("obj.bin", old)
    client = client_for(proxy, s3.region)
    reader = client.get_object(
        s3.bucket, "obj.bin", reader_constructor=S3ReaderConstructor.range_based(buffer_size=buffer_size)
    )
    read_size = MIB // 2 if buffer_size else 2 * MIB  # through the buffer, or past it
    assert returns(lambda: reader.read(read_size)) == old[:read_size]
    s3.put("obj.bin", new)
    reader.seek(2 * MIB)  # beyond what the first read fetched

    caught = raises_s3_exception(lambda: reader.read(read_size))

    assert caught.key == "obj.bin"
    assert "changed while it was being read" in str(caught) or "overwritten" in str(caught), str(caught)
    gets = proxy.requests(lambda r: r.is_get_of("obj.bin"))
    assert len(gets) >= 2
    assert all(e.request.headers.get("if-match") for e in gets[1:]), "later reads were not pinned"


# ---------------------------------------------------------------------- 5. no credentials in errors


def test_credentials_never_appear_in_errors(s3, proxy, monkeypatch, caplog):
    secret = "SeCrEt/Do+Not+Leak+9f3b2c7e1a4d6058"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAULTTESTKEY0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "SessionTokenDoNotLeak7c1e")
    caplog.set_level("DEBUG")
    s3.put("obj.bin", payload(SIZE, seed=13))
    proxy.add(lambda r: r.path == f"/{s3.bucket}/slow.bin", error(503, "SlowDown"))
    proxy.add(lambda r: r.path == f"/{s3.bucket}/reset.bin", reset())
    proxy.add(lambda r: r.path == f"/{s3.bucket}/cut.bin", truncate(5))
    client = client_for(proxy, s3.region, max_attempts=1)

    attempts = {
        "missing key": lambda: read_sequential(client, s3.bucket, "missing.bin"),
        "missing bucket": lambda: client.head_object("no-such-bucket-fault-test", "k"),
        "503": lambda: read_sequential(client, s3.bucket, "slow.bin"),
        "reset": lambda: client.head_object(s3.bucket, "reset.bin"),
        "truncated": lambda: read_range_based_whole(client, s3.bucket, "cut.bin"),
        "failed put": lambda: write(client, s3.bucket, "slow.bin", b"x" * 10),
        "failed list": lambda: list(client.list_objects("no-such-bucket-fault-test")),
    }
    s3.put("cut.bin", b"y" * 100)
    texts = [repr(client), repr(client.s3client_config)]
    for name, attempt in attempts.items():
        caught = raises_s3_exception(attempt)
        texts += [str(caught), repr(caught), repr(caught.args), name]
        texts += [str(getattr(caught, a, "")) for a in ("code", "bucket", "key", "request_id", "operation")]
    texts += [record.getMessage() for record in caplog.records]

    # The signed requests really were made with these credentials.
    assert any("AKIAFAULTTESTKEY0001" in e.request.headers.get("authorization", "") for e in proxy.requests())
    for text in texts:
        assert secret not in text
        assert "SessionTokenDoNotLeak7c1e" not in text
    for entry in proxy.requests():  # nor on the wire
        assert secret not in entry.request.target
        assert all(secret not in value for value in entry.request.headers.values())


# ---------------------------------------------------------------------- 6. literal keys


LITERAL_KEYS = {
    "dot_dot": "a/../b.bin",
    "dot_dot_start": "../escape.bin",
    "only_dots": "..",
    "dot_segment": "a/./b.bin",
    "leading_slash": "/abs/path.bin",
    "double_slash": "a//b.bin",
    "control_char": "ctl\x01key.bin",
    "tab": "tab\tkey.bin",  # ("\n" cannot be tested: moto answers 404 to any key holding it, boto3's too)
    "percent_and_query": "p%2Fq?x=1#frag.bin",
    "longest": "k/" + "L" * 1022,
    "longest_multibyte": "é" * 512,  # 1024 bytes of UTF-8
}


@pytest.mark.parametrize("name", sorted(LITERAL_KEYS))
def test_key_round_trips_literally(s3, proxy, name):
    key = LITERAL_KEYS[name]
    data = payload(1000, seed=14) + key.encode()
    client = client_for(proxy, s3.region, max_attempts=1)

    returns(lambda: write(client, s3.bucket, key, data))

    assert s3.keys() == [key]  # boto3 sees exactly this key, nothing normalised
    assert s3.get(key) == data
    assert returns(lambda: read_sequential(client, s3.bucket, key)) == data
    assert returns(lambda: client.head_object(s3.bucket, key)).size == len(data)
    listed = returns(lambda: [o.key for page in client.list_objects(s3.bucket) for o in page.object_info])
    assert listed == [key]


@pytest.mark.parametrize("key", ["k" * 1025, "é" * 512 + "k", "/" + "." * 1024])
def test_key_over_1024_bytes_is_refused_before_any_request(s3, proxy, key):
    client = client_for(proxy, s3.region, max_attempts=1)
    for operation in (
        lambda: client.put_object(s3.bucket, key),
        lambda: client.get_object(s3.bucket, key).read(),
        lambda: client.head_object(s3.bucket, key),
        lambda: client.delete_object(s3.bucket, key),
    ):
        with pytest.raises(ValueError):
            operation()
    assert proxy.requests() == []
    assert s3.keys() == []


# ---------------------------------------------------------------------- 7. stalls and trickles

SLOW_FAULTS = {"stall": stall(DEADLINE), "trickle_1KBps": trickle(1000, DEADLINE)}


@pytest.mark.parametrize("fault_name", sorted(SLOW_FAULTS))
def test_get_survives_a_stalled_or_trickling_part(s3, proxy, fault_name):
    data = payload(SIZE, seed=15)
    s3.put("obj.bin", data)
    parts = PartsOfGet(s3.bucket, "obj.bin")
    is_second_part = lambda r: parts.number(r) == 1
    rule = proxy.add(lambda r: is_second_part(r) and r.attempt == 0, SLOW_FAULTS[fault_name])
    client = client_for(proxy, s3.region, **STALL_SETTINGS)

    got = returns(lambda: read_sequential(client, s3.bucket, "obj.bin"))

    assert rule.fired == 1
    assert sha(got) == sha(data)
    assert len(proxy.requests(is_second_part)) == 2, "the slow attempt was not abandoned and retried"


@pytest.mark.parametrize("fault_name", sorted(SLOW_FAULTS))
def test_multipart_put_survives_a_stalled_or_trickling_part(s3, proxy, fault_name):
    data = payload(SIZE, seed=16)
    rule = proxy.add(lambda r: upload_part_of(s3.bucket, "up.bin", {2})(r) and r.attempt == 0, SLOW_FAULTS[fault_name])
    client = client_for(proxy, s3.region, **STALL_SETTINGS)

    returns(lambda: write(client, s3.bucket, "up.bin", data))

    assert rule.fired == 1
    assert sha(s3.get("up.bin")) == sha(data)
    assert s3.multipart_uploads() == []


def test_get_stalled_on_every_attempt_fails_instead_of_hanging(s3, proxy):
    s3.put("obj.bin", payload(1000, seed=17))
    proxy.add(ranged_get_of(s3.bucket, "obj.bin"), stall(DEADLINE))
    client = client_for(proxy, s3.region, max_attempts=2, **STALL_SETTINGS)

    caught = raises_s3_exception(lambda: read_sequential(client, s3.bucket, "obj.bin"))

    assert caught.operation == "GetObject" and caught.key == "obj.bin"
    assert "stall" in str(caught), str(caught)
    assert "2 attempts" in str(caught), str(caught)
    assert len(proxy.requests(ranged_get_of(s3.bucket, "obj.bin"))) == 2


def test_put_stalled_on_every_attempt_fails_and_leaves_nothing(s3, proxy):
    proxy.add(upload_part_of(s3.bucket, "up.bin", {1}), stall(DEADLINE))
    client = client_for(proxy, s3.region, max_attempts=2, **STALL_SETTINGS)

    caught = raises_s3_exception(lambda: write(client, s3.bucket, "up.bin", payload(SIZE, seed=18)))

    assert caught.operation == "PutObject" and caught.key == "up.bin"
    assert s3.keys() == [] and s3.multipart_uploads() == []


# ---------------------------------------------------------------------- 8. through a DataLoader


def key_and_sha(reader):
    return reader.key, sha(reader.read())


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize("kind", ["map", "iterable"])
def test_dataloader_workers_survive_faults(s3, proxy, kind):
    """Every second object GET fails once (throttled, reset or cut short) inside DataLoader worker
    processes: every sample still arrives once, with exactly its bytes."""
    expected = {}
    for i in range(24):
        data = payload(100_000 + 7_919 * i, seed=100 + i)
        s3.put(f"train/{i:03d}.bin", data)
        expected[f"train/{i:03d}.bin"] = sha(data)
    faults = [error(503, "SlowDown"), reset(), truncate(1000)]
    rules = [
        proxy.add(
            lambda r, i=i: (
                r.method == "GET"
                and r.path.startswith(f"/{s3.bucket}/train/")
                and not r.query
                and r.attempt == 0
                and int(r.path[-7:-4]) % 6 == 2 * i + 1
            ),
            fault,
        )
        for i, fault in enumerate(faults)
    ]
    uri, config = s3.uri("train/"), S3ClientConfig(max_attempts=3)
    if kind == "map":
        dataset = S3MapDataset.from_prefix(
            uri, region=s3.region, endpoint=proxy.url, transform=key_and_sha, s3client_config=config
        )
    else:
        dataset = S3IterableDataset.from_prefix(
            uri,
            region=s3.region,
            endpoint=proxy.url,
            transform=key_and_sha,
            s3client_config=config,
            enable_sharding=True,
        )
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=keep_list, timeout=DEADLINE)

    samples = returns(lambda: [sample for batch in loader for sample in batch])

    assert sorted(key for key, _ in samples) == sorted(expected), "missing or repeated samples"
    assert dict(samples) == expected
    assert [rule.fired for rule in rules] == [4, 4, 4]


# ---------------------------------------------------------------------- 9. interrupted checkpoint writes

SAVE_CHECKPOINT = """
    import signal, sys, torch
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when the run ignores SIGINT (started with &)
    from s3torchconnector import S3Checkpoint
    checkpoint = S3Checkpoint(region="us-east-1", endpoint=sys.argv[1])
    state = {"weights": torch.arange(6 * 1024 * 1024, dtype=torch.float32)}  # 24 MiB: a multipart upload
    with checkpoint.writer(sys.argv[2]) as writer:
        torch.save(state, writer)
    print("saved", flush=True)
"""


def start_checkpoint_save(proxy, uri) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SAVE_CHECKPOINT), proxy.url, uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["ctrl_c", "kill"])
def test_interrupted_checkpoint_save_keeps_the_previous_checkpoint(s3, proxy, how):
    """The save's parts hang on the network when the process gets Ctrl-C or is killed: the
    checkpoint at the key stays the previous one, never a partial one."""
    previous = payload(1000, seed=21)
    s3.put("epoch.ckpt", previous)
    is_part = upload_part_of(s3.bucket, "epoch.ckpt")
    proxy.add(is_part, stall(DEADLINE))
    saver = start_checkpoint_save(proxy, s3.uri("epoch.ckpt"))
    try:
        wait_until(lambda: proxy.requests(is_part) or saver.poll() is not None, "the first part upload")
        assert saver.poll() is None, saver.communicate()
        saver.send_signal(signal.SIGINT if how == "ctrl_c" else signal.SIGKILL)
        _, stderr = saver.communicate(timeout=DEADLINE)
    finally:
        saver.kill()

    assert saver.returncode != 0
    assert s3.get("epoch.ckpt") == previous
    if how == "ctrl_c":
        assert "KeyboardInterrupt" in stderr, stderr
        # Interrupted, the process still cleans up: no multipart upload is left to bill for.
        assert s3.multipart_uploads() == []
