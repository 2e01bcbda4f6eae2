"""A writer's ``with`` block publishes only what it finished: close() on success, abort() on an exception."""

from typing import Any, Callable, Optional, TypeVar

_Writer = TypeVar("_Writer", bound="PublishOnSuccess")


class PublishOnSuccess:
    """Mixin for writers with ``close()`` (publish) and ``abort()`` (leave nothing behind)."""

    close: Callable[[], Any]  # what it returns (ShardWriter: the shards written) is not used here
    abort: Callable[[], None]
    # What failed inside the writer itself (S3Writer: its upload), once something has.
    _failure: Optional[BaseException] = None

    def __enter__(self: _Writer) -> _Writer:
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        if exc_type is None:
            self.close()
            return
        self.abort()
        # Code writing through us (torch.save) answers our failed write with an error of its own
        # ("unexpected pos"): raise our failure instead, theirs as its __context__, so the
        # traceback ends with the cause. An interrupt (KeyboardInterrupt, SystemExit) stays as it is.
        if self._failure is not None and exc_val is not self._failure and isinstance(exc_val, Exception):
            raise self._failure
