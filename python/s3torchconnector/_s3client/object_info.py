"""What S3 reports about objects: ObjectInfo (listing), HeadObjectResult (HEAD), ListObjectResult (a page),
RestoreStatus (of an archived object)."""

import calendar
import email.utils
import re
import time
from typing import List, Optional


def _epoch_seconds(timestamp: str) -> int:
    """S3 sends ISO 8601 in listings and RFC 1123 in headers; both become seconds since the epoch."""
    if not timestamp:
        return 0
    if timestamp[:4].isdigit():  # "2026-11-23T23:14:27.000Z"; RFC 1123 starts with the weekday
        return calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))
    parsed = email.utils.parsedate_tz(timestamp)
    return int(email.utils.mktime_tz(parsed)) if parsed else 0


class RestoreStatus:
    """Where a restore from an archive storage class stands: in progress, or done until ``expiry``
    (seconds since the epoch)."""

    __slots__ = ("in_progress", "expiry")

    def __init__(self, in_progress: bool, expiry: Optional[int] = None):
        self.in_progress = in_progress
        self.expiry = expiry

    def __repr__(self) -> str:
        return f"RestoreStatus(in_progress={self.in_progress!r}, expiry={self.expiry!r})"


def restore_status_from_header(header: str) -> Optional[RestoreStatus]:
    """The x-amz-restore header of a HEAD: 'ongoing-request="true"', or 'ongoing-request="false",
    expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"' once restored; None when absent (not archived or
    never restored)."""
    ongoing = re.search(r'ongoing-request="(true|false)"', header)
    if not ongoing:
        return None
    expiry = re.search(r'expiry-date="([^"]+)"', header)
    return RestoreStatus(ongoing.group(1) == "true", _epoch_seconds(expiry.group(1)) if expiry else None)


class HeadObjectResult:
    """Metadata of one object, as HeadObject returns it."""

    __slots__ = ("etag", "size", "_last_modified", "storage_class", "restore_status")

    def __init__(
        self,
        etag: str,
        size: int,
        last_modified: str = "",
        storage_class: Optional[str] = None,
        restore_status=None,
    ):
        self.etag = etag
        self.size = size
        self._last_modified = last_modified
        self.storage_class = storage_class or None
        self.restore_status = restore_status

    @property
    def last_modified(self) -> int:
        """Seconds since the epoch."""
        return _epoch_seconds(self._last_modified)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(etag={self.etag!r}, size={self.size})"


class ObjectInfo(HeadObjectResult):
    """One object of a listing: its key plus HeadObjectResult's fields."""

    __slots__ = ("key",)

    def __init__(
        self,
        key: str,
        etag: str,
        size: int,
        last_modified: str = "",
        storage_class: Optional[str] = None,
        restore_status=None,
    ):
        # Every field set here, not through super().__init__: a listing or a manifest makes one per object,
        # and the extra call was a third of the time it takes to make one.
        self.key = key
        self.etag = etag
        self.size = size
        self._last_modified = last_modified
        self.storage_class = storage_class or None
        self.restore_status = restore_status

    def __repr__(self) -> str:
        return f"ObjectInfo(key={self.key!r}, etag={self.etag!r}, size={self.size})"

    def __reduce__(self):
        return (
            ObjectInfo,
            (self.key, self.etag, self.size, self._last_modified, self.storage_class),
        )


class ListObjectResult:
    """One page of ListObjectsV2."""

    __slots__ = ("object_info", "common_prefixes")

    def __init__(self, object_info: List[ObjectInfo], common_prefixes: List[str]):
        self.object_info = object_info
        self.common_prefixes = common_prefixes

    def __repr__(self) -> str:
        return f"ListObjectResult(object_info={self.object_info!r}, common_prefixes={self.common_prefixes!r})"
