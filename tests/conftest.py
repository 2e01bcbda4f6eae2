"""A real S3 API for the tests: moto's server on 127.0.0.1, started once per test session."""

import contextlib
import logging
import os
import shutil
import tempfile
import uuid

import pytest
from local_s3 import LocalS3

# Dummy credentials and no instance-metadata lookups: nothing here may reach beyond this machine.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.pop("AWS_PROFILE", None)
for _variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
    os.environ.pop(_variable, None)

# The manifests' shared object indexes (_listing/index_files.py) in a folder of this session's, removed
# at its end, not in the machine's /dev/shm; subprocesses of the tests inherit it.
os.environ["S3TORCHCONNECTOR_INDEX_DIR"] = tempfile.mkdtemp(prefix="s3tc-test-indexes-")


def pytest_unconfigure(config):
    shutil.rmtree(os.environ["S3TORCHCONNECTOR_INDEX_DIR"], ignore_errors=True)


@contextlib.contextmanager
def _quicker_moto():
    """moto lists its own package directory on every request to route it, and logs every request:
    about a third of its time per GET. Caching that listing (it never changes while the server runs)
    and keeping only warnings leave requests and responses as they are."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    with pytest.MonkeyPatch.context() as patch:
        try:
            import moto.backends

            listing = tuple(moto.backends.list_of_moto_modules())
            patch.setattr(moto.backends, "list_of_moto_modules", lambda: listing)
        except (ImportError, AttributeError):
            pass  # another moto: slower, still correct
        werkzeug.setLevel(logging.WARNING)
        try:
            yield
        finally:
            werkzeug.setLevel(level)


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    with _quicker_moto():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


@pytest.fixture
def s3(s3_endpoint) -> LocalS3:
    """A new, empty bucket for each test."""
    local = LocalS3(s3_endpoint, f"test-{uuid.uuid4().hex[:16]}")
    local.boto3.create_bucket(Bucket=local.bucket)
    return local
