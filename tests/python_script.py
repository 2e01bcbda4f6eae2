"""Runs test code in a fresh interpreter: its memory, descriptors, threads and exit are its own,
not pytest's or moto's."""

import os
import subprocess
import sys
import textwrap

import pytest


def run_python(code: str, *args, timeout: float, path=None) -> subprocess.CompletedProcess:
    """Runs the dedented `code` (as the file `path` when given, e.g. for spawned DataLoader workers
    that must import it) with `args`; fails the test if it has not exited within `timeout` s."""
    if path is not None:
        path.write_text(textwrap.dedent(code))
        command = [sys.executable, str(path), *map(str, args)]
    else:
        command = [sys.executable, "-c", textwrap.dedent(code), *map(str, args)]
    # A fatal signal in any process of the run prints a traceback to stderr.
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(
            f"the interpreter did not exit within {timeout} s (a hang);\n"
            f"stdout: {expired.stdout!r}\nstderr: {expired.stderr!r}"
        )
