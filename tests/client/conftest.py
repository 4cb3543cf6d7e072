"""Fixtures of the client tests: a real controller behind a real uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gefion.client import Client
from tests.api.helpers import Site, running_site


@pytest.fixture
def site() -> Iterator[Site]:
    with running_site() as s:
        yield s


@pytest.fixture
def client(site: Site) -> Iterator[Client]:
    with Client(site.url, timeout=20, token=site.token) as c:
        yield c
