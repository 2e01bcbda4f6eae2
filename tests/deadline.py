"""Calls that must not hang: each runs in a thread, and the test fails if it has not returned in time."""

import threading

from s3torchconnector import S3Exception

DEADLINE = 60  # seconds any single call may take before the test fails as a hang


def call_with_deadline(function, seconds: float = DEADLINE) -> dict:
    """Runs function in a thread; returns {"value": ...} or {"error": ...}. Fails if it hangs."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function()
        except BaseException as caught:  # noqa: BLE001 - handed back to the test
            outcome["error"] = caught

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the call did not return within {seconds} s"
    return outcome


def returns(function, seconds: float = DEADLINE):
    """What the call returned; what it raised is raised again."""
    outcome = call_with_deadline(function, seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def raises_s3_exception(function, seconds: float = DEADLINE) -> S3Exception:
    outcome = call_with_deadline(function, seconds)
    assert "error" in outcome, f"expected an S3Exception, the call returned {outcome.get('value')!r}"
    caught = outcome["error"]
    assert isinstance(caught, S3Exception), f"expected an S3Exception, got {type(caught).__name__}: {caught}"
    return caught
