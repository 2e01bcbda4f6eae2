"""The fault-injecting proxy, between the client under test and each test's moto bucket."""

import pytest

from .proxy import FaultProxy


@pytest.fixture
def proxy(s3):
    with FaultProxy(s3.endpoint) as running:
        yield running
