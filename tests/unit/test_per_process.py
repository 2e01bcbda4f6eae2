"""PerProcess: one value per process, never a parent's, never a lock a fork left held (cpp/fork.h's rule)."""

import os
import pickle
import threading

from forked_child import in_forked_child

from s3torchconnector._per_process import PerProcess


def test_a_value_is_built_once_per_process():
    holder: PerProcess[object] = PerProcess()
    assert holder.built() is None
    first = holder.get(object)
    assert holder.get(object) is first
    assert holder.built() is first


def test_threads_racing_for_the_first_value_get_the_same_one():
    holder: PerProcess[object] = PerProcess()
    start = threading.Barrier(8)
    values = []

    def take():
        start.wait()
        values.append(holder.get(object))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(values) == 8 and all(value is values[0] for value in values)


def test_a_forked_child_has_none_of_its_parents_value_and_builds_its_own():
    holder: PerProcess[int] = PerProcess()
    holder.get(os.getpid)
    assert in_forked_child(lambda: (holder.built(), holder.get(os.getpid) == os.getpid())) == "(None, True)"
    assert holder.built() == os.getpid()  # the parent's is untouched


def test_a_lock_held_at_a_fork_is_free_in_the_child():
    """Another thread may be building the value when the process forks: its lock would stay held
    forever in the child, whose first get() would then hang."""
    holder: PerProcess[int] = PerProcess()
    with holder._lock:  # held, as by another thread, across the fork
        reported = in_forked_child(lambda: holder.get(os.getpid) == os.getpid())
    assert reported == "True"


def test_a_pickled_holder_carries_no_value():
    """Spawn and forkserver workers get the holder pickled: they build their own value."""
    holder: PerProcess[object] = PerProcess()
    original = holder.get(object)
    copy = pickle.loads(pickle.dumps(holder))
    assert copy.built() is None
    assert copy.get(object) is not original
    assert holder.built() is original
