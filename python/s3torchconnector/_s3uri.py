"""Parsing s3://bucket/key URIs, strictly and with errors that name the URI."""

from typing import Tuple

from ._validation import check_bucket

_SCHEME = "s3://"


def parse_s3_uri(uri: str) -> Tuple[str, str]:
    """``s3://bucket/some/key`` -> ("bucket", "some/key"); the key may be empty (a prefix)."""
    if not isinstance(uri, str):
        raise TypeError(f"an S3 URI must be a string like 's3://bucket/key', got {type(uri).__name__}")
    if not uri.startswith(_SCHEME):
        raise ValueError(f"{uri!r} is not an S3 URI: it must start with 's3://' as in 's3://bucket/key'")
    bucket, _, key = uri[len(_SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} has no bucket name: use 's3://bucket/key'")
    try:
        check_bucket(bucket)
    except ValueError as error:
        raise ValueError(f"{uri!r}: {error}") from None
    return bucket, key
