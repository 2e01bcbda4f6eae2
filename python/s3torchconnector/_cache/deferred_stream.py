"""A stream whose work happens at its first use, so that asking for one never waits.

The datasets ask for the next objects' streams ahead of reading them, to keep their GETs in flight.
A cache miss starts its GET at once but writes the object into the cache at the first read; a read
that must wait for another process's download waits at the first read too.
"""

from typing import Callable, Optional


class DeferredStream:
    """The native stream interface over a stream made by ``make()`` at the first call that needs it;
    ``abandon()`` releases what was set aside if the stream is closed (or dropped) before that."""

    def __init__(self, bucket: str, key: str, make: Callable[[], object], abandon: Callable[[], None]):
        self.bucket = bucket
        self.key = key
        self._make: Optional[Callable[[], object]] = make
        self._abandon: Optional[Callable[[], None]] = abandon
        self._stream = None
        self._failure: Optional[BaseException] = None
        self._closed = False

    def _target(self):
        if self._stream is None:
            if self._closed:
                raise RuntimeError("the stream is closed")
            if self._failure is not None:
                raise self._failure  # as a native stream raises its request's error at every read
            make, self._make, self._abandon = self._make, None, None
            assert make is not None
            try:
                self._stream = make()
            except Exception as error:
                self._failure = error
                raise
        return self._stream

    def info(self):
        return self._target().info()

    def read_all_bytes(self) -> bytes:
        return self._target().read_all_bytes()

    def land_bytes(self) -> bytes:
        return self._target().land_bytes()

    def wait_landed(self, start: int, end: int) -> None:
        self._target().wait_landed(start, end)

    def has_landed(self, start: int, end: int) -> bool:
        return self._target().has_landed(start, end)

    def readinto(self, buffer) -> int:
        return self._target().readinto(buffer)

    def next_chunk(self):
        return self._target().next_chunk()

    def tell(self) -> int:
        return self._target().tell()

    def __iter__(self) -> "DeferredStream":
        return self

    def __next__(self) -> bytes:
        return next(self._target())

    def close(self) -> None:
        self._closed = True
        if self._stream is not None:
            self._stream.close()
        elif self._abandon is not None:
            abandon, self._abandon, self._make = self._abandon, None, None
            abandon()

    def __del__(self):
        # A reader dropped unread must not keep a `.part` locked: other processes wait on that lock.
        if getattr(self, "_abandon", None) is not None:
            self.close()
