"""Fixtures of the API tests: ``site``, a real controller behind the real API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.helpers import Site, running_site


@pytest.fixture
def site() -> Iterator[Site]:
    with running_site() as s:
        yield s


@pytest.fixture(scope="module")
def shared_site() -> Iterator[Site]:
    """One site for a module's tests that change nothing (refusals, 404s, the schema)."""
    with running_site() as s:
        yield s
