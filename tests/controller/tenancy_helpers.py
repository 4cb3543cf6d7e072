"""Helpers of the tenancy tests (grants, reservations, fair share, sensitive projects): a
real controller stepped by the test (no loop), on a clock the test may set."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gefion.controller.config import ControllerConfig
from gefion.controller.service import Controller
from gefion.controller.submission import SubmitRequest
from gefion.store import JobRow, Store

NODE = "node1"
BY = "test"
#: ``url_factory(backend)``: a fresh database of that backend (tests/store/conftest.py)
UrlFactory = Callable[[str], str]


class FakeClock:
    """The controller's clock, moved by the test (seconds since the epoch)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@contextmanager
def stepped(data_dir: Path, db_url: str, *, clock: Callable[[], float] | None = None,
            **config: Any) -> Iterator[Controller]:
    """A started controller whose loop the test runs (``c.step()``); nothing it started is
    left running afterwards."""
    settings: dict[str, Any] = {"node_name": NODE, "kill_grace_s": 1, "refresh_s": 0.2,
                                **config}
    if "cluster" not in settings:
        settings.setdefault("emulate_gpus", 8)
    c = Controller(ControllerConfig(data_dir=data_dir, db_url=db_url, **settings),
                   clock=clock)
    c.start(loop=False)
    try:
        yield c
    finally:
        executor = c.executor
        for job_id in list(executor.active) if executor is not None else ():
            executor.cancel(job_id)
        c.stop()


def store_of(c: Controller) -> Store:
    assert c.store is not None
    return c.store


def submit(c: Controller, workdir: Path, script: str, *argv: str, user: str = "root"
           ) -> int:
    ids, _ = c.submit(SubmitRequest(user=user, cwd=str(workdir), script=script, argv=argv,
                                    env={"PATH": "/usr/bin:/bin"}))
    return ids[0]


def step_until(c: Controller, done: Callable[[], bool], timeout_s: float = 20.0,
               what: str = "the condition") -> None:
    """Step the scheduler until ``done()``."""
    deadline = time.monotonic() + timeout_s
    while True:
        c.step()
        if done():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout_s} s")
        time.sleep(0.02)


def job(c: Controller, job_id: int) -> JobRow:
    return c.get_job(job_id)
