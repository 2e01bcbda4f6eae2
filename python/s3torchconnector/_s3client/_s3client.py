"""S3Client: the user-facing client, one native client per process, readers and writers on top."""

import logging
import os
from contextvars import ContextVar
from typing import Optional

from .. import _logging, _metrics, _native
from .._cache import settings as cache_settings
from .._cache.node_cache import NodeCache
from .._per_process import PerProcess
from .._user_agent import UserAgent
from .._validation import check_bucket, check_key
from ..s3reader import S3Reader, S3ReaderConstructor
from ..s3reader.protocol import S3ReaderConstructorProtocol
from ..s3writer import S3Writer
from .list_object_stream import ListObjectStream
from .object_info import HeadObjectResult, restore_status_from_header
from .s3client_config import S3ClientConfig

log = logging.getLogger(__name__)

_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def _resolve_endpoint(endpoint: Optional[str]) -> str:
    """An explicit endpoint wins; otherwise the variables boto3 and the AWS CLI honour."""
    if endpoint:
        return endpoint
    for variable in _ENDPOINT_VARIABLES:
        value = os.environ.get(variable)
        if value:
            return value
    return ""


class S3Client:
    """A client for one region (and optionally one endpoint).

    Safe to share between threads and to pass to DataLoader workers: each process builds its own
    native client on first use, so fork, spawn and forkserver all work.
    """

    def __init__(
        self,
        region: str,
        *,
        endpoint: Optional[str] = None,
        user_agent: Optional[UserAgent] = None,
        s3client_config: Optional[S3ClientConfig] = None,
    ):
        if not isinstance(region, str) or not region:
            raise ValueError(f"region must be a non-empty string such as 'us-east-1', got {region!r}")
        if endpoint is not None and not isinstance(endpoint, str):
            raise TypeError(f"endpoint must be a string URL, got {type(endpoint).__name__}")
        if s3client_config is not None and not isinstance(s3client_config, S3ClientConfig):
            raise TypeError(f"s3client_config must be an S3ClientConfig, got {type(s3client_config).__name__}")
        self._region = region
        self._endpoint = endpoint
        self._user_agent_prefix = (user_agent or UserAgent()).prefix
        self._s3client_config = s3client_config or S3ClientConfig()
        self._native: PerProcess[_native.NativeClient] = PerProcess()
        config = self._s3client_config
        self._cache_settings = cache_settings.resolve(config.cache_dir, config.cache_max_bytes)
        self._node_cache: PerProcess[NodeCache] = PerProcess()

    @property
    def region(self) -> str:
        return self._region

    @property
    def endpoint(self) -> Optional[str]:
        return self._endpoint

    @property
    def s3client_config(self) -> S3ClientConfig:
        return self._s3client_config

    @property
    def user_agent_prefix(self) -> str:
        return self._user_agent_prefix

    @property
    def _client(self) -> _native.NativeClient:
        native = self._native.built()
        if native is None:
            # Native logs, as the variables and Python loggers ask, before this process's first request.
            _logging.configure()
            native = self._native.get(self._client_builder)
        return native

    def _client_builder(self) -> _native.NativeClient:
        options = self._s3client_config.native_options(
            self._region, _resolve_endpoint(self._endpoint), self._user_agent_prefix
        )
        return _native.NativeClient(**options)

    def _cache(self) -> Optional[NodeCache]:
        """This process's view of the node cache; None when the cache is off."""
        return None if self._cache_settings is None else self._node_cache.get(self._cache_builder)

    def _cache_builder(self) -> NodeCache:
        assert self._cache_settings is not None
        return NodeCache(self._cache_settings, self._endpoint_name(), self._s3client_config.stall_timeout_seconds)

    def _endpoint_name(self) -> str:
        """The endpoint this client's requests go to. What the node keeps of objects (cache entries,
        tar shards' indexes) names it: two endpoints' "bucket/key" are two objects."""
        return _resolve_endpoint(self._endpoint) or f"s3.{self._region}.amazonaws.com"

    def metrics(self) -> dict:
        """What this process's requests through this client did so far, as a plain dict.

        ``{"operations": {"GetObject": {...}, ...}, "peak_connections": n}``; per S3 operation:
        ``requests`` (HTTP requests: each part and each retry counts), ``bytes`` (object data
        received or sent), ``retries``, ``throttles`` (503 SlowDown, 429), ``server_errors`` (5xx),
        ``stalls_dropped`` (connections dropped by the stall timeout), ``failed``, and
        ``first_byte_ms`` / ``duration_ms`` percentiles (p50, p90, p99). Each process (a DataLoader
        worker, a rank) counts its own requests; ``s3torchconnector.merge_metrics`` adds snapshots.

        With the node cache on, ``"cache"`` counts this process's reads through it: ``hits`` (served
        from local disk), ``misses`` (downloaded into the cache by this process), ``bytes_from_cache``,
        ``revalidations`` (HEADs asking which version is current), ``evictions`` and ``fallbacks``
        (reads sent to S3 because the cache's disk failed).
        """
        native = self._native.built()
        snapshot = _metrics.shape(native.metrics()) if native is not None else _metrics.empty_metrics()
        if self._cache_settings is not None:
            cache = self._node_cache.built()
            snapshot["cache"] = cache.counters() if cache is not None else _metrics.empty_cache_counters()
        return snapshot

    def get_object(
        self,
        bucket: str,
        key: str,
        *,
        object_info: Optional[HeadObjectResult] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
    ) -> S3Reader:
        """A reader of s3://bucket/key. Nothing is sent until the first read."""
        return self._get_object_version(bucket, key, "", object_info, reader_constructor)

    def _get_object_version(
        self,
        bucket: str,
        key: str,
        etag: str,
        object_info: Optional[HeadObjectResult] = None,
        reader_constructor: Optional[S3ReaderConstructorProtocol] = None,
    ) -> S3Reader:
        """A reader of the version of s3://bucket/key whose ETag is ``etag`` (a manifest's record):
        if the object changed since, its first read fails with 412 PreconditionFailed. With ""
        the reader reads whichever version its first response comes from."""
        check_bucket(bucket)
        check_key(key)
        log.debug("GetObject s3://%s/%s", bucket, key)
        streams = _PinnedStreams(self, bucket, key, etag, object_info)
        constructor = reader_constructor or S3ReaderConstructor.default()
        return constructor(bucket=bucket, key=key, get_object_info=streams.object_info, get_stream=streams)

    def _stream_object(self, bucket: str, key: str, etag: str = "", object_info=None) -> "_native.GetObjectStream":
        """All of s3://bucket/key as one GET that streams in order (parts fetched ahead within the
        read window, so memory stays bounded), pinned to ``etag`` when given. ``object_info`` (a
        listing's) lets the node cache serve the version listed without asking."""
        check_bucket(bucket)
        check_key(key)
        return _PinnedStreams(self, bucket, key, etag, object_info)(0, None)

    def _stream_range(self, bucket: str, key: str, etag: str, start: int, end: int) -> "_native.GetObjectStream":
        """Bytes [start, end) of version ``etag`` of s3://bucket/key (a tar shard's sample), as one GET
        sent now, through the node cache when it is on. Another version fails the read
        (ObjectChangedError), as ``_get_object_version``'s readers do."""
        check_bucket(bucket)
        check_key(key)
        return _PinnedStreams(self, bucket, key, etag)(start, end)

    def _get_object_stream(
        self, bucket: str, key: str, start: Optional[int] = None, end: Optional[int] = None
    ) -> "_native.GetObjectStream":
        """A native download of bytes [start, end) of the object (all of it by default).

        Without a range it is fetched as one buffer: parts land at their offsets as they arrive.
        The original's signature: plugins and test suites patch this method.
        """
        if start is not None and start < 0 or end is not None and end < 0:
            raise ValueError(f"a byte range cannot be negative, got start={start} end={end}")
        if start is not None and end is not None and end < start:
            raise ValueError(f"range end {end} is before its start {start}")
        whole = start is None and end is None
        return self._client.get_object(bucket, key, start, end, whole, _pinned_version.get())

    def put_object(self, bucket: str, key: str, storage_class: Optional[str] = None) -> S3Writer:
        """A writer of s3://bucket/key; the object appears when the writer is closed."""
        check_bucket(bucket)
        check_key(key)
        if storage_class is not None and (not isinstance(storage_class, str) or not storage_class):
            raise ValueError(f"storage_class must be a non-empty string such as 'STANDARD', got {storage_class!r}")
        log.debug("PutObject s3://%s/%s", bucket, key)
        return S3Writer(self._client.put_object(bucket, key, storage_class or ""), bucket=bucket, key=key)

    def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str = "", max_keys: int = 1000
    ) -> ListObjectStream:
        """Pages of ListObjectsV2, fetched one at a time as the iteration reaches them."""
        check_bucket(bucket)
        if not isinstance(prefix, str) or not isinstance(delimiter, str):
            raise TypeError("prefix and delimiter must be strings")
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or not 1 <= max_keys <= 1000:
            raise ValueError(f"max_keys must be an integer from 1 to 1000, got {max_keys!r}")
        log.debug("ListObjectsV2 s3://%s/%s", bucket, prefix)
        return ListObjectStream(self, bucket, prefix, delimiter, max_keys)

    def head_object(self, bucket: str, key: str) -> HeadObjectResult:
        check_bucket(bucket)
        check_key(key)
        info = self._client.head_object(bucket, key)
        restore_status = restore_status_from_header(info.restore)
        return HeadObjectResult(info.etag, info.size, info.last_modified, info.storage_class, restore_status)

    def delete_object(self, bucket: str, key: str) -> None:
        check_bucket(bucket)
        check_key(key)
        self._client.delete_object(bucket, key)

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        for bucket, key in ((src_bucket, src_key), (dst_bucket, dst_key)):
            check_bucket(bucket)
            check_key(key)
        self._client.copy_object(src_bucket, src_key, dst_bucket, dst_key)


# The version the reader now asking for a stream has pinned. It travels beside the call, not in it,
# so that `_get_object_stream` keeps the original's signature for code that patches it.
_pinned_version: ContextVar[Optional["_native.ObjectVersion"]] = ContextVar("_pinned_version", default=None)


class _PinnedStreams:
    """A reader's ``get_stream``: all of its requests read the version of the object that its first
    response came from (sent as If-Match), so an overwrite in between fails instead of mixing two.
    With the node cache on, they go through it (``_cache.node_cache.PinnedObject``)."""

    def __init__(self, client: S3Client, bucket: str, key: str, etag: str = "", object_info=None):
        self._client = client
        self.bucket = bucket
        self.key = key
        self._version = _native.ObjectVersion(etag)
        # A listing's (or the caller's): the version it saw, which the cache may serve, not one to insist on.
        self._object_info = object_info
        self._head: Optional[HeadObjectResult] = None

    def __call__(self, start: Optional[int] = None, end: Optional[int] = None) -> "_native.GetObjectStream":
        cache = self._client._cache()
        if cache is not None:
            return cache.stream(self, start, end)
        return self.from_s3(start, end)

    @property
    def known_etag(self) -> str:
        return self._version.etag or getattr(self._object_info, "etag", "") or ""

    def object_info(self):
        """The reader's ``get_object_info``: the listing's, else one HEAD for the reader's life."""
        return self._object_info if self._object_info is not None else self._headed()

    def pin(self, etag: str) -> None:
        """Later requests read version ``etag`` (a cached entry's, or the one a HEAD found current)."""
        if not self._version.etag and etag:
            self._version = _native.ObjectVersion(etag)

    def current_etag(self) -> str:
        return self._headed().etag

    def _headed(self) -> HeadObjectResult:
        if self._head is None:
            self._head = self._client.head_object(self.bucket, self.key)
        return self._head

    def from_s3(self, start: Optional[int], end: Optional[int]) -> "_native.GetObjectStream":
        token = _pinned_version.set(self._version)
        try:
            return self._client._get_object_stream(self.bucket, self.key, start, end)
        finally:
            _pinned_version.reset(token)
