"""Every object under a prefix, listed by several ListObjectsV2 requests at once, in the order that one
pagination gives.

One pagination asks for 1,000 keys at a time, each page after the one before: 1,000,000 keys are 1,000
round trips end to end (30-37 s at S3's 20 ms to first byte). Here the keys after the first page are
cut into ranges, each listed from its own start (``start-after``) on one of several threads; a range
whose first page comes back full is cut again while there is room, so the requests in flight stay
near the bound as long as there are keys left. The ranges' objects come out in range order, which is
key order: the same objects in the same order as one pagination, so a dataset's fingerprint, its
seeded shuffle and its saved states do not depend on how it was listed.

Where to cut is a guess; the partition is exact whatever the guess. After a page whose last key is the
cursor, the keys left most likely differ from the cursor where the page's own keys did not differ
from each other: so the cuts are the cursor's first characters then a higher character, at each place
from the prefix's end to where the page's keys began to differ, with characters the keys are made of.
Keys ``data/0000000``-``data/0000999`` in the first page give ``data/0001``...``data/0009``,
``data/001``...``data/009``, ``data/01``...``data/09`` and ``data/1``...``data/9``.
"""

import logging
import os
import threading
from bisect import bisect_right
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, Deque, Iterator, List, Optional, Tuple

from .._s3client import S3Client
from .._s3client.object_info import ObjectInfo

log = logging.getLogger(__name__)

CONCURRENCY = 16  # ListObjectsV2 requests in flight at most
PAGE_SIZE = 1000
PAGES_AHEAD = 256  # pages listed and not yet used, at most (about 256,000 objects)...
INDEX_PAGES_AHEAD = 4096  # ...and when they go straight into an object index
_PLACES = 12  # cut at most at this many places in a key...
_CHARACTERS = 8  # ...and at most at this many characters in each


class _StartAfterIgnored(Exception):
    """A server answered a ListObjectsV2 with start-after with keys that are not after it."""


class _Range:
    """Keys after ``after`` ("": from the first) up to and including ``upto`` (None: to the last)."""

    def __init__(self, after: str, upto: Optional[str]):
        self.after = after
        self.upto = upto
        self.cursor = after  # the last key listed: where its next page starts
        self.pages: Deque[Tuple[Any, int]] = deque()  # (native page, how many of its objects are the range's)
        self.pieces: List["_Range"] = []  # the rest of the range, once cut: listed by others
        self.error: Optional[BaseException] = None
        self.done = False
        self.parked = False  # stopped for the consumer to catch up; submitted again when it has


def list_in_parallel(
    client: S3Client, bucket: str, prefix: str, concurrency: int = CONCURRENCY, page_size: int = PAGE_SIZE
) -> Iterator[ObjectInfo]:
    """The objects under ``prefix`` in key order, listed ``concurrency`` requests at a time, for a
    general-purpose bucket (``start-after`` is what cuts the key space). An error answering any page
    is raised where that page's objects would have come. Closing the iterator early stops the listing:
    requests in flight finish, and no new one is sent."""
    return _ParallelListing(client, bucket, prefix, concurrency, page_size).objects()


def index_in_parallel(
    client: S3Client, bucket: str, prefix: str, writer, concurrency: int = CONCURRENCY, page_size: int = PAGE_SIZE
) -> None:
    """The same listing written into an object index (``writer``) page by page, natively: no Python
    object per key. Writing keeps up with any listing, so the pages waiting are bounded loosely
    (INDEX_PAGES_AHEAD): a tight bound makes the ranges wait on the one being written."""
    _ParallelListing(client, bucket, prefix, concurrency, page_size, INDEX_PAGES_AHEAD).write(writer)


class _ParallelListing:
    """The ranges' requests run on a pool of ``concurrency`` threads; the consumer takes the ranges'
    pages in key order as they come. At most ``pages_ahead`` pages wait for the consumer: a range
    that is not the one the consumer reads then parks (gives its thread back, keeping its cursor)
    until the consumer has caught up, so memory stays bounded however slowly the pages are used.
    The consumer's own range parks only while it has pages waiting, and goes on when the consumer
    waits for it."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str,
        concurrency: int,
        page_size: int,
        pages_ahead: int = PAGES_AHEAD,
    ):
        self._client = client
        self._native = client._client  # taken here, once: the ranges' threads share this process's client
        self._bucket = bucket
        self._prefix = prefix
        self._concurrency = concurrency
        self._page_size = page_size
        self._pages_ahead = pages_ahead
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="s3torchconnector-listing")
        self._changed = threading.Condition()
        self._open = 0  # ranges submitted and not done (parked ones included)
        self._waiting = 0  # pages listed and not taken by the consumer
        self.most_waiting = 0  # the most there were at once (for the tests)
        self._head: Optional[_Range] = None  # the range the consumer reads
        self._parked: List[_Range] = []
        self._stopped = False

    def objects(self) -> Iterator[ObjectInfo]:
        given = 0
        try:
            for page, end in self._pages():
                yield from (
                    ObjectInfo(o.key, o.etag, o.size, o.last_modified, o.storage_class) for o in page.objects[:end]
                )
                given += end
        except _StartAfterIgnored:
            yield from self._page_by_page(given)

    def write(self, writer) -> None:
        given = 0
        try:
            for page, end in self._pages():
                page.add_to(writer, self._bucket, end)
                given += end
        except _StartAfterIgnored:
            for info in self._page_by_page(given):
                writer.add(self._bucket, info.key, info.size, info.etag, info.storage_class or "", info.last_modified)

    def _pages(self) -> Iterator[Tuple[Any, int]]:
        """(native page, how many of its first objects to take), in key order; _StartAfterIgnored
        after the pages that came before a range that found the server ignoring start-after."""
        first = _Range("", None)
        try:
            self._submit([first])
            to_give = [first]  # ranges left, the next at the end
            while to_give:
                listed = to_give.pop()
                yield from self._pages_of(listed)
                to_give.extend(reversed(listed.pieces))
        finally:
            with self._changed:
                self._stopped = True
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _pages_of(self, listed: _Range) -> Iterator[Tuple[Any, int]]:
        """The pages of ``listed`` as they come, with ``listed`` the consumer's range meanwhile."""
        with self._changed:
            self._head = listed
            self._resume(only=listed)  # parked before it was the consumer's
        while True:
            with self._changed:
                while not listed.pages and not listed.done:
                    self._resume(only=listed)  # it parked with pages waiting, and they are taken
                    self._changed.wait()
                if not listed.pages:  # done, every page taken
                    if listed.error is not None:
                        raise listed.error
                    return
                taken = listed.pages.popleft()
                self._waiting -= 1
                if self._waiting <= self._pages_ahead // 2:  # room again: the parked ranges go on
                    self._resume()
            yield taken

    def _submit(self, ranges: List[_Range]) -> None:
        with self._changed:
            self._open += len(ranges)
        for listed in ranges:
            self._pool.submit(self._list, listed)

    def _resume(self, only: Optional[_Range] = None) -> None:
        """Submits the parked ranges again (``only`` that one when given). Called holding the lock."""
        for parked in [only] if only is not None else list(self._parked):
            if parked.parked and not self._stopped:
                parked.parked = False
                self._parked.remove(parked)
                self._pool.submit(self._list, parked)

    def _list(self, listed: _Range) -> None:
        finished = True
        try:
            while True:
                with self._changed:
                    if self._stopped:
                        return
                    # The consumer's range parks too while it has pages waiting; never when it waits on it.
                    if self._waiting >= self._pages_ahead and (listed is not self._head or listed.pages):
                        listed.parked, finished = True, False
                        self._parked.append(listed)
                        return
                cursor = listed.cursor
                page = self._native.list_objects(self._bucket, self._prefix, "", self._page_size, "", cursor)
                keys = page.keys  # a new list at each access: taken once
                if cursor and keys and keys[0] <= cursor:
                    raise _StartAfterIgnored()  # so are all these ranges: the consumer lists page by page
                end = len(keys) if listed.upto is None else bisect_right(keys, listed.upto)
                with self._changed:
                    listed.pages.append((page, end))
                    self._waiting += 1
                    self.most_waiting = max(self.most_waiting, self._waiting)
                    self._changed.notify_all()
                if end < len(keys) or not keys or not page.next_continuation_token:
                    return  # past the range's end, or the listing's
                listed.cursor = keys[-1]
                with self._changed:
                    room_to_cut = self._open < 2 * self._concurrency
                if not listed.pieces and room_to_cut:
                    points = cut_points(self._prefix, keys, listed.upto)
                    if points:
                        ends: List[Optional[str]] = [*points, listed.upto]
                        listed.pieces = [_Range(a, b) for a, b in zip([listed.cursor, *points], ends)]
                        self._submit(listed.pieces)
                        return
        except BaseException as error:  # given to the consumer, in order
            listed.error = error
        finally:
            if finished:
                with self._changed:
                    self._open -= 1
                    listed.done = True
                    self._changed.notify_all()

    def _page_by_page(self, given: int) -> Iterator[ObjectInfo]:
        """The listing after its first ``given`` objects, from one pagination."""
        log.warning("s3://%s lists keys at or before start-after: listed page by page instead", self._bucket)
        pages = self._client.list_objects(self._bucket, self._prefix, max_keys=self._page_size)
        yield from islice((info for page in pages for info in page.object_info), given, None)


def cut_points(prefix: str, keys: List[str], upto: Optional[str]) -> List[str]:
    """Strings between the page's last key and ``upto`` at which to cut the keys left (see the
    module's docstring), sorted; none when no place is left to cut at."""
    cursor = keys[-1]
    varied_from = len(os.path.commonprefix([keys[0], cursor]))
    characters = sorted(set("".join(key[varied_from:] for key in keys)))
    points = set()
    for place in range(max(len(prefix), varied_from + 1 - _PLACES), min(varied_from + 1, len(cursor))):
        higher = [c for c in characters if c > cursor[place]]
        step = max(1, -(-len(higher) // _CHARACTERS))  # at most _CHARACTERS of them, spread out
        for character in higher[::step]:
            point = cursor[:place] + character
            if upto is None or point < upto:
                points.add(point)
    return sorted(points)
