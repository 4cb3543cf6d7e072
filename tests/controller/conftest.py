"""Controller fixtures: a real controller (store, scheduler loop, local executor) on SQLite
and on PostgreSQL, with real processes."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gefion.controller.config import ControllerConfig
from gefion.controller.service import Controller
from gefion.controller.submission import SubmitRequest
from gefion.core.jobs import JobState
from gefion.store import JobRow
from tests.store.conftest import backend, pg_admin, url_factory  # noqa: F401 (fixtures)

NODE = "node1"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """The controller's data directory, open to other users (jobs run as the submitting
    user, who must reach the run directory; pytest's tmp_path is closed to them)."""
    path = Path(tempfile.mkdtemp(prefix="gefion-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def controller(data_dir: Path, backend: str,  # noqa: F811
               url_factory: Callable[[str], str]) -> Iterator[Controller]:  # noqa: F811
    c = Controller(ControllerConfig(data_dir=data_dir, db_url=url_factory(backend),
                                    node_name=NODE, emulate_gpus=8, kill_grace_s=1,
                                    refresh_s=0.5))
    c.start()
    yield c
    c.stop()
    for job_id in c.executor.active if c.executor else ():  # nothing left running
        c.executor.cancel(job_id)


def submit(c: Controller, workdir: Path, script: str, *argv: str) -> list[int]:
    ids, _ = c.submit(SubmitRequest(user="root", cwd=str(workdir), script=script,
                                    argv=argv, env={"PATH": "/usr/bin:/bin"}))
    return ids


def wait_for(c: Controller, job_id: int, done: Callable[[JobRow], bool],
             timeout_s: float = 30.0) -> JobRow:
    deadline = time.monotonic() + timeout_s
    while True:
        row = c.get_job(job_id)
        if done(row):
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {row.state} ({row.reason}) after "
                                 f"{timeout_s} s")
        time.sleep(0.05)


def ended(row: JobRow) -> bool:
    return row.state.terminal


def state_is(*states: JobState) -> Callable[[JobRow], bool]:
    return lambda row: row.state in states
