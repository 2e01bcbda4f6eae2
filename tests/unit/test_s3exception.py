"""The rules that turn a failed request's facts into an S3Exception: its kind, code and message. No server."""

import pickle

import pytest

from s3torchconnector import (
    AccessDeniedError,
    CredentialsError,
    NoSuchBucketError,
    NoSuchKeyError,
    ObjectChangedError,
    S3ConnectionError,
    S3Exception,
    ThrottledError,
)
from s3torchconnector.s3exception import error_from_facts, with_message

GET = dict(operation="GetObject", bucket="b", key="k", endpoint="http://127.0.0.1:9", max_attempts=10)


def answered(status, code="", **more):
    return error_from_facts(**{**GET, "status": status, "code": code, **more})


def failed(crt_error, text="what the CRT says", **more):
    return error_from_facts(**{**GET, "crt_error": crt_error, "crt_error_text": text, **more})


@pytest.mark.parametrize(
    "status, code, kind, builtin",
    [
        (404, "NoSuchKey", NoSuchKeyError, FileNotFoundError),
        (404, "NoSuchBucket", NoSuchBucketError, FileNotFoundError),
        (403, "AccessDenied", AccessDeniedError, PermissionError),
        (403, "SignatureDoesNotMatch", AccessDeniedError, PermissionError),
        (412, "PreconditionFailed", ObjectChangedError, S3Exception),
        (503, "SlowDown", ThrottledError, S3Exception),
    ],
)
def test_each_answer_has_its_kind_and_the_builtin_generic_code_knows(status, code, kind, builtin):
    error = answered(status, code)
    assert type(error) is kind and isinstance(error, S3Exception) and isinstance(error, builtin)
    assert (error.code, error.status, error.bucket, error.key, error.operation) == (code, status, "b", "k", "GetObject")


def test_a_missing_key_reads_as_a_missing_file():
    error = answered(404, "NoSuchKey", request_id="R1")
    assert str(error) == (
        "NoSuchKey: s3://b/k does not exist (Service error: The key does not exist; HTTP 404, request id R1)"
    )
    with pytest.raises(FileNotFoundError):
        raise error


@pytest.mark.parametrize(
    "status, key, code",
    [(404, "k", "NoSuchKey"), (404, "", "NoSuchBucket"), (403, "k", "AccessDenied"), (416, "k", "InvalidRange")],
)
def test_an_answer_without_a_body_is_named_by_its_status(status, key, code):
    """S3 answers HEAD without a body: the status alone names the error."""
    error = answered(status, key=key)
    assert error.code == code
    assert str(error).startswith(f"{code}: ")


@pytest.mark.parametrize(
    "operation, key, code, wording",
    [
        ("GetObject", "k", "NoSuchKey", "Service error: The key does not exist"),
        ("HeadObject", "k", "NoSuchKey", "Service error: The object was not found"),
        ("CopyObject", "k", "NoSuchKey", "Service error: The object was not found"),
        ("ListObjectsV2", "", "NoSuchBucket", "Service error: The bucket does not exist"),
        ("GetObject", "k", "NoSuchBucket", "Service error: The bucket does not exist"),
        ("CopyObject", "k", "NoSuchBucket", "Service error: The object was not found"),
    ],
)
def test_a_missing_key_or_bucket_keeps_the_originals_wording(operation, key, code, wording):
    """Code written for the original matches on its text: pytest.raises(S3Exception, match=...), `in str(e)`."""
    error = answered(404, code, operation=operation, key=key)
    assert error.code == code and wording in str(error)


def test_an_unknown_status_without_a_body_keeps_the_number():
    assert answered(418).code == "HTTP418"
    assert type(answered(418)) is S3Exception


def test_an_unknown_s3_code_keeps_s3s_message():
    error = answered(400, "InvalidArgument", server_message="The token is wrong")
    assert str(error) == "InvalidArgument: GetObject of s3://b/k failed: The token is wrong (HTTP 400)"
    assert type(error) is S3Exception


def test_a_copy_whose_source_is_missing_names_the_source():
    error = answered(404, "NoSuchKey", operation="CopyObject", bucket="src", key="a")
    assert str(error) == (
        "NoSuchKey: copy source s3://src/a does not exist (Service error: The object was not found; HTTP 404)"
    )


def test_a_bucket_in_another_region_says_to_pass_its_region():
    assert "not in the configured region" in str(answered(301, "PermanentRedirect"))


def test_throttling_until_the_attempts_ran_out_says_so_and_has_the_status():
    """The CRT reports its own error and no status when retries run out on 503 and 500."""
    slow = failed("AWS_ERROR_S3_SLOW_DOWN")
    assert type(slow) is ThrottledError and slow.status == 503
    assert str(slow) == "SlowDown: GetObject of s3://b/k failed (HTTP 503; gave up after up to 10 attempts)"
    internal = failed("AWS_ERROR_S3_INTERNAL_ERROR", max_attempts=1)
    assert internal.status == 500 and str(internal).endswith("; gave up after up to 1 attempt)")


def test_a_refused_connection_names_the_endpoint_and_the_attempts():
    error = failed("AWS_IO_SOCKET_CONNECTION_REFUSED", "socket refused")
    assert isinstance(error, S3ConnectionError) and isinstance(error, ConnectionError)
    assert error.status == 0 and error.code == "AWS_IO_SOCKET_CONNECTION_REFUSED"
    assert str(error) == (
        "AWS_IO_SOCKET_CONNECTION_REFUSED: could not connect to http://127.0.0.1:9: connection refused; "
        "check the endpoint (socket refused; gave up after up to 10 attempts)"
    )


def test_a_failure_the_crt_does_not_retry_claims_no_attempts():
    for crt_error in ("AWS_ERROR_S3_CANCELED", "AWS_ERROR_S3_OBJECT_MODIFIED", "AWS_AUTH_SIGNING_NO_CREDENTIALS"):
        assert "gave up" not in str(failed(crt_error))
    assert "gave up" not in str(failed("AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE", retryable=False))


def test_an_answer_the_crt_could_not_read_claims_no_attempts():
    """The CRT fails a request whose answer is not S3's shape at once: it retries none of them."""
    for crt_error in ("AWS_ERROR_S3_MISSING_UPLOAD_ID", "AWS_ERROR_S3_MISSING_CONTENT_RANGE_HEADER"):
        assert "gave up" not in str(failed(crt_error))


def test_an_upload_without_a_readable_upload_id_says_what_was_left_and_the_workaround():
    error = failed("AWS_ERROR_S3_MISSING_UPLOAD_ID", operation="PutObject")
    message = str(error)
    assert error.code == "AWS_ERROR_S3_MISSING_UPLOAD_ID" and "CreateMultipartUpload of PutObject s3://b/k" in message
    assert "without a retry" in message and "multipart upload open" in message
    assert "S3ClientConfig(part_size=...) above the object's size" in message


def test_missing_credentials_say_how_to_configure_them():
    error = failed("AWS_AUTH_CREDENTIALS_PROVIDER_CHAIN_SOURCES_EXHAUSTED")
    assert type(error) is CredentialsError
    assert "no usable AWS credentials were found" in str(error)


def test_a_tls_failure_points_at_the_ca_bundle_in_use():
    without = failed("AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE", retryable=False)
    assert "set AWS_CA_BUNDLE" in str(without)
    given = failed("AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE", retryable=False, ca_bundle="/etc/ca.pem")
    assert "AWS_CA_BUNDLE (/etc/ca.pem)" in str(given)


def test_an_object_overwritten_during_a_read_is_a_change():
    error = failed("AWS_ERROR_S3_OBJECT_MODIFIED")
    assert type(error) is ObjectChangedError and "read it again" in str(error)


def test_a_stall_names_the_settings_that_decide_it():
    assert "min_throughput_bytes_per_second" in str(failed("AWS_ERROR_HTTP_CHANNEL_THROUGHPUT_FAILURE"))


def test_a_listing_that_is_not_s3s_answer():
    error = error_from_facts(operation="ListObjectsV2", bucket="b", key="p/", code="MalformedResponse")
    assert error.code == "MalformedResponse" and error.status == 0
    assert str(error) == (
        "MalformedResponse: ListObjectsV2 of s3://b/p/ returned a response that is not a ListObjectsV2 result; "
        "is the endpoint an S3 API?"
    )


def test_an_unknown_fact_is_refused():
    with pytest.raises(TypeError, match="colour"):
        error_from_facts(colour="red")


def test_a_new_message_keeps_the_kind_and_attributes():
    error = answered(412, "PreconditionFailed", request_id="R")
    better = with_message(error, "the manifest is stale")
    assert type(better) is ObjectChangedError and str(better) == "the manifest is stale"
    assert (better.code, better.status, better.request_id) == ("PreconditionFailed", 412, "R")


def test_errors_survive_pickling_as_between_processes():
    error = pickle.loads(pickle.dumps(answered(404, "NoSuchKey")))
    assert type(error) is NoSuchKeyError and error.code == "NoSuchKey" and error.key == "k"


def test_a_user_made_s3exception_has_every_attribute():
    """The original's S3Exception takes a message; code that reads its attributes must not fail."""
    error = S3Exception("mine")
    assert (str(error), error.code, error.status, error.key) == ("mine", "", 0, "")
