"""ForwardStream: an object read front to back through one in-order GET, keeping only a small window
of the bytes just read, so that a parser may step back a little."""

import sys
from typing import Callable

from .s3reader import readinto_full

# Reads smaller than this are served from a window of the object filled this much at a time; larger
# ones are copied once, from the parts the stream received, straight into the caller's memory.
WINDOW_FILL = 256 * 1024
# A jump forward of at most this many bytes reads through them (the GET has most of them on their way
# already); a longer one starts a new GET where it lands.
SKIP_BY_READING = 8 * 1024 * 1024
_DISCARD_PIECE = 1024 * 1024


class ForwardStream:
    """Bytes of one object from the GET ``get_stream(start, None)``, read in order. Memory stays
    bounded by the GET's read window and one window of bytes already read: ``[window_start, at)``.
    Reads before ``window_start`` cannot be served (``can_read`` says so)."""

    def __init__(self, get_stream: Callable, start: int = 0):
        self._get_stream = get_stream
        self._stream = get_stream(start, None)
        self.size: int = self._stream.info().size  # the whole object's; waits for the response headers
        self.at = start  # object offset of the stream's next byte
        self.window_start = start
        self._window = bytearray()  # object bytes [window_start, at)

    def can_read(self, start: int) -> bool:
        return start >= self.window_start

    def readinto(self, start: int, target: memoryview) -> int:
        """Fills ``target`` with the object's bytes from ``start`` (``can_read(start)``); returns how
        many, fewer only where the object ends. After a failure (or Ctrl-C) the stream's position is
        unknown: it reads nothing more (``can_read`` is False)."""
        try:
            return self._readinto(start, target)
        except BaseException:
            self.window_start = sys.maxsize
            raise

    def _readinto(self, start: int, target: memoryview) -> int:
        end = min(start + len(target), self.size)
        if end <= start:
            return 0
        if end <= self.at:  # all in the window
            offset = start - self.window_start
            target[: end - start] = self._window[offset : offset + end - start]
            return end - start
        if start > self.at:
            self._skip_to(start)
        kept = self._window[start - self.window_start :]  # what the window has from start on
        target[: len(kept)] = kept
        rest = target[len(kept) : end - start]
        if len(rest) >= WINDOW_FILL:
            got = readinto_full(self._stream, rest)
            self.at += got
            self.window_start, self._window = self.at, bytearray()
            return len(kept) + got
        window = bytearray(len(kept) + min(WINDOW_FILL, self.size - self.at))
        window[: len(kept)] = kept
        got = readinto_full(self._stream, memoryview(window)[len(kept) :])
        del window[len(kept) + got :]
        self.window_start, self._window = start, window
        self.at += got
        n = min(len(rest), got)
        rest[:n] = memoryview(window)[len(kept) : len(kept) + n]
        return len(kept) + n

    def read_rest(self) -> bytes:
        """The rest of the object from ``at``, received straight into one bytes object."""
        rest = self._stream.read_all_bytes()
        self.at += len(rest)
        self.window_start, self._window = self.at, bytearray()
        return rest

    def _skip_to(self, start: int) -> None:
        if start - self.at > SKIP_BY_READING:
            self._stream.close()
            self._stream = self._get_stream(start, None)
            self.at = start
        else:
            scratch = memoryview(bytearray(min(_DISCARD_PIECE, start - self.at)))
            while self.at < start:
                got = readinto_full(self._stream, scratch[: start - self.at])
                if not got:
                    break
                self.at += got
        self.window_start, self._window = self.at, bytearray()

    def close(self) -> None:
        self._stream.close()
