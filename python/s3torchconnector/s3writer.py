"""S3Writer: a write-only file whose bytes become an S3 object when it is closed."""

import io
from typing import Optional

from ._publish_on_success import PublishOnSuccess
from .s3exception import S3Exception


class S3Writer(PublishOnSuccess, io.BufferedIOBase):
    """Bytes written go up as a multipart upload while you keep writing (objects smaller than
    one part go up in a single request). ``close()`` completes the upload; leaving a ``with``
    block by an exception, calling ``abort()``, or dropping the writer unclosed cancels it and
    leaves no object behind. Once a write has failed with an S3Exception, ``write``, ``close()``
    and the ``with`` block raise that S3Exception again, whatever error the caller raised on it.
    """

    def __init__(self, stream, bucket: Optional[str] = None, key: Optional[str] = None):
        super().__init__()
        self._stream = stream
        self._bucket = bucket
        self._key = key
        self._position = 0
        self._finished = False

    @property
    def stream(self):
        """The upload stream this writer writes to (the original's public attribute)."""
        return self._stream

    @property
    def bucket(self) -> Optional[str]:
        """The bucket of the object written (None for a writer made over a bare upload stream)."""
        return self._bucket

    @property
    def key(self) -> Optional[str]:
        """The key of the object written (None for a writer made over a bare upload stream)."""
        return self._key

    def write(self, data) -> int:
        """Writes any bytes-like object (bytes, bytearray, memoryview, numpy arrays...)."""
        if self._failure is not None:
            raise self._failure
        if self._finished:
            raise ValueError(f"write to a closed S3Writer ({self._describe()})")
        if isinstance(data, str):
            raise TypeError("S3Writer.write takes bytes-like objects, not str; encode it first")
        try:
            written = self._stream.write(data)
        except BufferError as error:
            raise ValueError(f"S3Writer.write needs a contiguous buffer: {error}") from None
        except BaseException as error:
            # A failed or interrupted write leaves the upload unusable: cancel it. S3's reason is
            # kept to be raised again, as callers like torch.save hide it behind their own error.
            if isinstance(error, S3Exception):
                self._failure = error
            self.abort()
            raise
        self._position += written
        return written

    def tell(self) -> int:
        """How many bytes were written so far."""
        return self._position

    def flush(self) -> None:
        """Nothing to do: bytes are handed to the upload as they are written."""

    def writable(self) -> bool:
        """True until the writer is closed or aborted."""
        return not self._finished

    def seekable(self) -> bool:
        """False: an upload is written front to back (``torch.save`` copes)."""
        return False

    def readable(self) -> bool:
        """False: read the object back with an S3Reader."""
        return False

    @property
    def closed(self) -> bool:
        """True once the writer is closed or aborted (or its upload failed)."""
        return self._finished

    def close(self) -> None:
        """Completes the upload; the object exists when this returns. Raises S3Exception on failure."""
        if self._failure is not None:
            raise self._failure  # the upload failed: there is no object to report as written
        if self._finished:
            return
        self._finished = True
        self._stream.close()

    def abort(self) -> None:
        """Cancels the upload: no object is created, no multipart upload is left behind."""
        if self._finished:
            return
        self._finished = True
        self._stream.abort()

    def __del__(self):
        # io.IOBase would call close() and publish a half-written object; cancel instead.
        if not getattr(self, "_finished", True):
            try:
                self._finished = True
                self._stream.abort()
            except Exception:
                pass

    def _describe(self) -> str:
        return f"s3://{self._bucket}/{self._key}" if self._bucket else "upload"
