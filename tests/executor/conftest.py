"""Fixtures for the executor's tests: real processes, tiny time limits, nothing left behind."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gefion.executor.local import LocalExecutor
from gefion.executor.spec import LaunchSpec
from tests.executor.helpers import ME, Exits, SpecFactory, kill_leftovers

_ids = itertools.count(1)


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "run"
    yield path
    kill_leftovers(path)


@pytest.fixture
def executor(run_dir: Path) -> Iterator[LocalExecutor]:
    with LocalExecutor(run_dir, liveness_interval_s=0.1) as ex:
        yield ex


@pytest.fixture
def exits(executor: LocalExecutor) -> Exits:
    return Exits(executor)


@pytest.fixture
def make_spec(tmp_path: Path) -> SpecFactory:
    """``make_spec(script, **fields)``: a spec running ``script`` as the current user, its
    output in ``tmp_path/<job id>.out``, a 1 s kill grace, and a fresh job id."""

    def make(script: str, **fields: Any) -> LaunchSpec:
        job_id = fields.pop("job_id", next(_ids))
        defaults: dict[str, Any] = {
            "job_id": job_id, "name": f"test-{job_id}", "user": ME,
            "script": script if script.startswith("#!") else f"#!/bin/bash\n{script}\n",
            "workdir": str(tmp_path), "node": "node1",
            "stdout_path": str(tmp_path / f"{job_id}.out"),
            "stderr_path": str(tmp_path / f"{job_id}.out"),
            "kill_grace_s": 1, "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        }
        return LaunchSpec(**{**defaults, **fields})

    return make


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can enter (pytest's tmp_path is 0700, closed to ``nobody``)."""
    path = Path(tempfile.mkdtemp(prefix="gefion-executor-"))
    path.chmod(0o755)
    yield path
    kill_leftovers(path / "run")
    shutil.rmtree(path, ignore_errors=True)
