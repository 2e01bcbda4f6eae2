"""A writer's ``with`` block publishes only what it finished: close() on success, abort() on an exception."""

from typing import Any, Callable, TypeVar

_Writer = TypeVar("_Writer", bound="PublishOnSuccess")


class PublishOnSuccess:
    """Mixin for writers with ``close()`` (publish) and ``abort()`` (leave nothing behind)."""

    close: Callable[[], Any]  # what it returns (ShardWriter: the shards written) is not used here
    abort: Callable[[], None]

    def __enter__(self: _Writer) -> _Writer:
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
