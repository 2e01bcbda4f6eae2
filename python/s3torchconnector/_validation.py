"""Argument checks shared by every entry point: wrong input fails here, before any request."""

import re

# S3 bucket names (including S3 Express directory buckets): letters, digits, '.', '-', '_'.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_MAX_KEY_BYTES = 1024  # S3's limit on a key's UTF-8 length


def check_bucket(bucket) -> None:
    if not isinstance(bucket, str):
        raise TypeError(f"bucket must be a string, got {type(bucket).__name__}")
    if not _BUCKET.match(bucket):
        raise ValueError(
            f"invalid bucket name {bucket!r}: use letters, digits, '.', '-' (and '_'), starting with a letter or digit"
        )


def check_key(key) -> None:
    if not isinstance(key, str):
        raise TypeError(f"key must be a string, got {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty: name an object, e.g. 'data/sample-0.bin'")
    if len(key.encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES:
        raise ValueError(f"key is longer than S3's limit of {_MAX_KEY_BYTES} bytes: {key[:60]!r}...")
