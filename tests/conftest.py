"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

# CI replays the same examples every run (a landing must not hinge on a lucky draw); locally,
# hypothesis explores new ones each time and keeps failures in .hypothesis/.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

GefionRunner = Callable[..., subprocess.CompletedProcess[str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``early`` (the few that take minutes) run first: with parallel workers
    (scripts/test runs pytest-xdist), one worker takes each of them at once and the others
    share the rest meanwhile, instead of the run waiting on one at its end."""
    items.sort(key=lambda item: item.get_closest_marker("early") is None)  # stable


@pytest.fixture
def run_gefion() -> GefionRunner:
    """Run the real ``gefion`` command in a child process, as a user's shell would.

    ``run_gefion("plan", path, "--json")`` returns the completed process (``returncode``,
    ``stdout``, ``stderr`` as text). No stdin, as in CI; a wide terminal so Rich tables are
    not wrapped; a timeout so a hang fails the test instead of the whole run.
    """

    def run(*args: str | Path, cwd: Path | None = None,
            timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
        return subprocess.run(
            [sys.executable, "-m", "gefion.cli.main", *map(str, args)],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
            timeout=timeout_s, check=False,
        )

    return run
