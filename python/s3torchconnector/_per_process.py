"""A value each process builds for itself: the Python half of the fork rule written in cpp/fork.h."""

import os
import threading
import weakref
from typing import Callable, Generic, Optional, Tuple, TypeVar

T = TypeVar("T")

# Every holder of this process, so that a forked child can give each a lock of its own.
_holders: "weakref.WeakSet[PerProcess]" = weakref.WeakSet()


class PerProcess(Generic[T]):
    """Holds one value per process, built on first use in that process.

    A forked child sees its parent's value but must not use it (the native threads behind it were
    not copied), so ``get`` builds anew in each process; pickled for spawn and forkserver, a holder
    carries no value at all.
    """

    def __init__(self) -> None:
        self._start_empty()

    def _start_empty(self) -> None:
        self._lock = threading.Lock()
        self._built: Optional[Tuple[int, T]] = None  # (the process that built it, the value)
        _holders.add(self)

    def get(self, build: Callable[[], T]) -> T:
        """This process's value, built by ``build()`` if this process has none yet."""
        pid = os.getpid()
        built = self._built
        if built is None or built[0] != pid:
            with self._lock:
                built = self._built
                if built is None or built[0] != pid:
                    built = (pid, build())
                    self._built = built
        return built[1]

    def built(self) -> Optional[T]:
        """This process's value, or None before its first ``get``."""
        built = self._built
        return built[1] if built is not None and built[0] == os.getpid() else None

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self._start_empty()


def _fresh_locks_in_child() -> None:
    # A lock another thread held at the fork (while building a native client, say) would stay held
    # forever in the child, and its first request would hang.
    for holder in list(_holders):
        holder._lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_locks_in_child)
