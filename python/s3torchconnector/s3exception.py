"""S3Exception and its kinds: what failed, where, and what to do about it.

The native client raises with the raw facts of a failed request (operation, bucket, key, HTTP status,
S3's error code and message, request id, the CRT's error); every rule that names the error, picks its
class and writes its message is here, so each can be tested without a server. Every kind keeps
S3Exception as its base; those a generic caller already knows are also the matching built-in error
(a missing key is a FileNotFoundError, as in fsspec and s3fs).
"""

from typing import Dict, Tuple, Type

from . import _native


class S3Exception(Exception):
    """An S3 request failed.

    Attributes: ``code`` (S3's error code such as 'NoSuchKey', or the CRT's error name for a failure
    without a response), ``status`` (HTTP status, 0 if none arrived), ``bucket``, ``key``,
    ``request_id`` and ``operation`` (such as 'GetObject').
    """

    code = ""
    status = 0
    bucket = ""
    key = ""
    request_id = ""
    operation = ""


class NoSuchKeyError(S3Exception, FileNotFoundError):
    """The object does not exist."""


class NoSuchBucketError(S3Exception, FileNotFoundError):
    """The bucket does not exist."""


class AccessDeniedError(S3Exception, PermissionError):
    """S3 refused the request: the credentials, or the bucket's policy, do not allow it."""


class CredentialsError(S3Exception):
    """No usable AWS credentials were found."""


class ObjectChangedError(S3Exception):
    """The object changed while it was being read (or since the version the read was pinned to)."""


class ThrottledError(S3Exception):
    """S3 kept answering SlowDown (503) until the attempts ran out."""


class S3ConnectionError(S3Exception, ConnectionError):
    """The endpoint could not be reached, or the connection to it failed or stalled."""


_KIND_BY_CODE: Dict[str, Type[S3Exception]] = {
    "NoSuchKey": NoSuchKeyError,
    "NoSuchBucket": NoSuchBucketError,
    "AccessDenied": AccessDeniedError,
    "InvalidAccessKeyId": AccessDeniedError,
    "SignatureDoesNotMatch": AccessDeniedError,
    "PreconditionFailed": ObjectChangedError,
    "AWS_ERROR_S3_OBJECT_MODIFIED": ObjectChangedError,
    "SlowDown": ThrottledError,
    "AWS_IO_SOCKET_CONNECTION_REFUSED": S3ConnectionError,
    "AWS_IO_DNS_INVALID_NAME": S3ConnectionError,
    "AWS_IO_DNS_QUERY_FAILED": S3ConnectionError,
    "AWS_IO_DNS_NO_ADDRESS_FOR_HOST": S3ConnectionError,
    "AWS_IO_SOCKET_TIMEOUT": S3ConnectionError,
    "AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE": S3ConnectionError,
    "AWS_IO_TLS_ERROR_DEFAULT_TRUST_STORE_NOT_FOUND": S3ConnectionError,
    "AWS_ERROR_HTTP_CHANNEL_THROUGHPUT_FAILURE": S3ConnectionError,
    "AWS_ERROR_HTTP_RESPONSE_FIRST_BYTE_TIMEOUT": S3ConnectionError,
    "AWS_ERROR_HTTP_CONNECTION_CLOSED": S3ConnectionError,
    "AWS_ERROR_HTTP_SERVER_CLOSED": S3ConnectionError,
}

# S3 answers HEAD requests and some errors without a body: the status alone names the error.
_CODE_BY_STATUS = {
    301: "PermanentRedirect",
    400: "BadRequest",
    403: "AccessDenied",
    412: "PreconditionFailed",
    416: "InvalidRange",
    500: "InternalError",
    503: "SlowDown",
}

# When retries run out on throttling or server errors the CRT reports its own error and no status.
_STATUS_BY_CRT_ERROR = {"AWS_ERROR_S3_SLOW_DOWN": 503, "AWS_ERROR_S3_INTERNAL_ERROR": 500}

_NOT_LIKE_S3 = (
    "AWS_ERROR_S3_MISSING_ETAG",
    "AWS_ERROR_S3_MISSING_CONTENT_RANGE_HEADER",
    "AWS_ERROR_S3_INVALID_CONTENT_RANGE_HEADER",
    "AWS_ERROR_S3_MISSING_CONTENT_LENGTH_HEADER",
    "AWS_ERROR_S3_INVALID_CONTENT_LENGTH_HEADER",
    "AWS_ERROR_S3_MISSING_UPLOAD_ID",
)


def _uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"


def _is_credentials_error(crt_error: str) -> bool:
    return crt_error.startswith("AWS_AUTH_")


def _explain_service_error(code: str, server_message: str, facts: dict) -> str:
    operation, bucket = facts["operation"], facts["bucket"]
    uri = _uri(bucket, facts["key"])
    if code == "NoSuchKey":
        # A copy's destination need not exist: a missing key there is the source's (the facts name it).
        return f"copy source {uri} does not exist" if operation == "CopyObject" else f"{uri} does not exist"
    if code == "NoSuchBucket":
        return f"bucket '{bucket}' does not exist"
    if code == "AccessDenied":
        return f"{operation} of {uri} was denied; check the credentials and that the bucket policy allows it"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return f"the credentials were rejected for {uri}; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the profile"
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
        return f"bucket '{bucket}' is not in the configured region; pass the bucket's region"
    if code == "InvalidRange":
        return f"the requested range is outside {uri}"
    if code == "PreconditionFailed":
        return f"{uri} changed while it was being read"
    text = f"{operation} of {uri} failed"
    return f"{text}: {server_message}" if server_message else text


def _explain_crt_error(crt_error: str, facts: dict) -> str:
    where = facts["endpoint"] or "S3"
    operation = facts["operation"]
    uri = _uri(facts["bucket"], facts["key"])
    if crt_error == "AWS_IO_SOCKET_CONNECTION_REFUSED":
        return f"could not connect to {where}: connection refused; check the endpoint"
    if crt_error in ("AWS_IO_DNS_INVALID_NAME", "AWS_IO_DNS_QUERY_FAILED", "AWS_IO_DNS_NO_ADDRESS_FOR_HOST"):
        return f"could not resolve the host of {where}; check the endpoint and the region"
    if crt_error == "AWS_IO_SOCKET_TIMEOUT":
        return f"timed out talking to {where}"
    if crt_error in ("AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE", "AWS_IO_TLS_ERROR_DEFAULT_TRUST_STORE_NOT_FOUND"):
        text = f"the TLS handshake with {where} failed: its certificate is not trusted or is not for that host name; "
        bundle = facts["ca_bundle"]
        if not bundle:
            return text + "if it uses a private certificate authority, set AWS_CA_BUNDLE"
        return (
            text + f"check that AWS_CA_BUNDLE ({bundle}) holds its certificate authority and that the endpoint "
            "names a host its certificate covers"
        )
    if crt_error == "AWS_ERROR_HTTP_CHANNEL_THROUGHPUT_FAILURE":
        return (
            f"the connection to {where} stalled during {operation} of {uri}: it moved fewer than "
            "S3ClientConfig.min_throughput_bytes_per_second for stall_timeout_seconds"
        )
    if crt_error == "AWS_ERROR_S3EXPRESS_CREATE_SESSION_FAILED":
        return (
            f"{where} refused to open an S3 Express session (CreateSession) on bucket '{facts['bucket']}' for "
            f"{operation} of {uri}: check that the directory bucket exists in the configured region and that the "
            "credentials allow s3express:CreateSession on it"
        )
    if crt_error == "AWS_ERROR_S3_CANCELED":
        return f"{operation} of {uri} was cancelled"
    if crt_error == "AWS_ERROR_S3_OBJECT_MODIFIED":
        return f"{uri} was overwritten while it was being read; read it again"
    if crt_error == "AWS_ERROR_S3_RESPONSE_CHECKSUM_MISMATCH":
        return f"the bytes of {uri} did not match their checksum"
    if crt_error == "AWS_ERROR_S3_MISSING_UPLOAD_ID":
        return (
            f"{where} answered the CreateMultipartUpload of {operation} {uri} without an UploadId where S3 puts it "
            "(InitiateMultipartUploadResult/UploadId), so the upload stopped there, without a retry; the server may "
            "keep that multipart upload open until it is aborted with the server's own tools. To upload to such a "
            "server, set S3ClientConfig(part_size=...) above the object's size: the object then goes up in one PUT"
        )
    if crt_error in _NOT_LIKE_S3:
        return f"{where} did not answer {operation} like S3 does; is the endpoint an S3 API?"
    if crt_error in (
        "AWS_ERROR_HTTP_RESPONSE_FIRST_BYTE_TIMEOUT",
        "AWS_ERROR_HTTP_CONNECTION_CLOSED",
        "AWS_ERROR_HTTP_SERVER_CLOSED",
    ):
        return f"the connection to {where} failed"
    if _is_credentials_error(crt_error):
        return (
            "no usable AWS credentials were found (environment, profile, web identity, container or "
            "instance metadata); configure credentials, or use unsigned access for public buckets"
        )
    return f"{operation} of {uri} failed"


def _original_wording(code: str, operation: str) -> str:
    """The original's text for a missing key or bucket ("Service error: The key does not exist"), kept inside
    our message so that code matching on it (pytest.raises(match=...), `in str(error)`) still finds it."""
    if code == "NoSuchKey":
        found = operation in ("HeadObject", "CopyObject")  # its head and copy errors name the object otherwise
        return "Service error: The object was not found" if found else "Service error: The key does not exist"
    if code == "NoSuchBucket":
        # Its copy says the same of a missing bucket as of a missing key (its own e2e tests match on it).
        found = operation == "CopyObject"
        return "Service error: The object was not found" if found else "Service error: The bucket does not exist"
    return ""


def _gave_up_after(max_attempts: int) -> str:
    return f"; gave up after up to {max_attempts} {'attempt' if max_attempts == 1 else 'attempts'}"


def _service_error(facts: dict, status: int) -> Tuple[str, str]:
    """The code and message of a request S3 answered with an error status."""
    code = facts["code"] or _CODE_BY_STATUS.get(status, "")
    if not code:
        code = ("NoSuchKey" if facts["key"] else "NoSuchBucket") if status == 404 else f"HTTP{status}"
    # "NoSuchKey: s3://b/k does not exist (Service error: The key does not exist; HTTP 404, request id X)";
    # "SlowDown: ... (HTTP 503, request id X; gave up after up to 10 attempts)".
    original = _original_wording(code, facts["operation"])
    message = f"{code}: {_explain_service_error(code, facts['server_message'], facts)} ("
    message += f"{original}; HTTP {status}" if original else f"HTTP {status}"
    if facts["request_id"]:
        message += f", request id {facts['request_id']}"
    if facts["max_attempts"] > 0 and facts["crt_error"] in _STATUS_BY_CRT_ERROR:
        message += _gave_up_after(facts["max_attempts"])
    return code, message + ")"


def _crt_error(facts: dict) -> Tuple[str, str]:
    """The code and message of a request that failed without an error response."""
    code = facts["crt_error"]
    message = f"{code}: {_explain_crt_error(code, facts)} ({facts['crt_error_text']}"
    # The CRT does not retry these (nor an answer it could not read): an attempt count would mislead.
    retried = (
        facts["retryable"]
        and not _is_credentials_error(code)
        and code not in ("AWS_ERROR_S3_CANCELED", "AWS_ERROR_S3_OBJECT_MODIFIED", *_NOT_LIKE_S3)
    )
    if facts["max_attempts"] > 0 and retried:
        message += _gave_up_after(facts["max_attempts"])
    return code, message + ")"


_FACT_DEFAULTS = dict(
    operation="",
    bucket="",
    key="",
    endpoint="",
    status=0,
    code="",
    server_message="",
    request_id="",
    crt_error="",
    crt_error_text="",
    retryable=True,
    max_attempts=0,
    ca_bundle="",
)


def error_from_facts(**given) -> S3Exception:
    """The exception for a failed request, from what is known of it (the names of _FACT_DEFAULTS)."""
    unknown = set(given) - set(_FACT_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown facts of a failed request: {sorted(unknown)}")
    facts = {**_FACT_DEFAULTS, **given}
    status = facts["status"] or _STATUS_BY_CRT_ERROR.get(facts["crt_error"], 0)
    if facts["code"] == "MalformedResponse":  # a success status, but not the answer S3 gives
        code = "MalformedResponse"
        message = (
            f"MalformedResponse: {facts['operation']} of {_uri(facts['bucket'], facts['key'])} returned a "
            f"response that is not a {facts['operation']} result; is the endpoint an S3 API?"
        )
    elif status >= 300:
        code, message = _service_error(facts, status)
    else:
        code, message = _crt_error(facts)
    kind = _KIND_BY_CODE.get(code, S3Exception)
    if _is_credentials_error(code):
        kind = CredentialsError
    return _with_attributes(
        kind(message),
        code=code,
        status=status,
        bucket=facts["bucket"],
        key=facts["key"],
        request_id=facts["request_id"],
        operation=facts["operation"],
    )


_ATTRIBUTES = ("code", "status", "bucket", "key", "request_id", "operation")


def _with_attributes(error: S3Exception, **attributes) -> S3Exception:
    """`error` with S3Exception's attributes set, every one of them."""
    assert set(attributes) == set(_ATTRIBUTES)
    for name, value in attributes.items():
        setattr(error, name, value)
    return error


def with_message(error: S3Exception, message: str) -> S3Exception:
    """The same error (its kind and attributes) with a more telling message."""
    return _with_attributes(type(error)(message), **{name: getattr(error, name) for name in _ATTRIBUTES})


def _from_native(facts: dict) -> S3Exception:
    return error_from_facts(**facts)


# Every S3Error the native module raises becomes the exception these rules make.
_native.set_exception_factory(_from_native)
