"""A GET stream as a readable, unseekable binary file, for io.BufferedReader, gzip and tarfile."""

import io


class StreamFile(io.RawIOBase):
    """Reads a native (or in-memory) GET stream in order; counts the bytes it handed out."""

    def __init__(self, stream):
        self._stream = stream
        self.position = 0  # bytes read so far: where in the object the next read starts

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._stream.readinto(buffer)
        self.position += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()
