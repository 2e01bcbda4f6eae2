"""The node cache's tests: clients through a counting proxy in front of moto, and a cache folder each."""

import subprocess
from pathlib import Path

import pytest
from faults.proxy import FaultProxy


@pytest.fixture
def proxy(s3):
    """Every request the clients under test send passes here and is counted."""
    with FaultProxy(s3.endpoint) as running:
        yield running


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "node-cache"


@pytest.fixture
def small_filesystem(tmp_path) -> Path:
    """A 1 MiB tmpfs: a disk that fills up. Mounting takes root (CAP_SYS_ADMIN), as CI has."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
