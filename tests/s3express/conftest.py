"""An S3 Express One Zone endpoint for the tests: ExpressServer in front of the session's moto.

- ``express_server``: a new ExpressServer (region us-east-1) before tests/conftest.py's moto
  (``s3_endpoint``); the user credentials it checks CreateSession against are the environment's
  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (tests/conftest.py sets them), the ones any client
  under test reads.
- ``express_bucket``: a fresh directory bucket (``<random>--use1-az4--x-s3``), created in moto, with
  its server: ``express_bucket.name``, ``express_bucket.server``, ``express_bucket.endpoint``.
- ``localhost_subdomains``: in this process only, ``socket.getaddrinfo`` resolves ``*.localhost`` as
  ``localhost`` (this machine's resolver does not), for Python clients addressing
  ``<bucket>.localhost``.

Moto accepts directory bucket names as they are (created path-style, straight to moto), so the
server forwards under the same name.
"""

import os
import socket
import uuid
from dataclasses import dataclass

import pytest

from .express_server import ExpressServer

REGION = "us-east-1"
AZ_ID = "use1-az4"


@dataclass
class ExpressBucket:
    name: str
    server: ExpressServer

    @property
    def endpoint(self) -> str:
        return self.server.endpoint


def moto_client(s3_endpoint: str):
    """A boto3 client straight to moto. botocore recognises ``--x-s3`` names and would first call
    CreateSession, which moto does not have: S3 Express session auth is turned off, and requests go
    path-style."""
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path", "disable_s3_express_session_auth": True})
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, config=config)


def directory_bucket_name() -> str:
    return f"{uuid.uuid4().hex[:12]}--{AZ_ID}--x-s3"


def express_server_for(s3_endpoint: str, **options) -> ExpressServer:
    """An ExpressServer before moto at ``s3_endpoint``, checking the environment's user credentials."""
    return ExpressServer(
        s3_endpoint,
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=REGION,
        **options,
    )


@pytest.fixture
def express_server(s3_endpoint):
    with express_server_for(s3_endpoint) as server:
        yield server


@pytest.fixture
def express_bucket(express_server, s3_endpoint) -> ExpressBucket:
    name = directory_bucket_name()
    moto_client(s3_endpoint).create_bucket(Bucket=name)
    return ExpressBucket(name, express_server)


@pytest.fixture
def localhost_subdomains(monkeypatch):
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and host.lower().rstrip(".").endswith(".localhost"):
            host = "localhost"
        return original(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
