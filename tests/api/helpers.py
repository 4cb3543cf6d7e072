"""A real controller (SQLite, local executor) behind the real API on 127.0.0.1, for the
API, client and CLI tests. Jobs run as the user running the tests.

The site is bootstrapped as ``gefion up`` does it: an admin named after the user running
the tests (``ME``), whose token ``site.http`` sends; projects ``nlp`` and ``bio`` exist
besides ``default``. ``site.token_for(...)`` makes other principals.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gefion.api import create_app
from gefion.api.denials import DenialLog
from gefion.api.server import ApiServer
from gefion.client import login_name
from gefion.controller.bootstrap import bootstrap_admin
from gefion.controller.config import ControllerConfig
from gefion.controller.service import Controller
from gefion.store import JobRow, Store

NODE = "node1"
ME = login_name()
SCRIPT = "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --time=5\necho hello\n"


@dataclass
class Site:
    """A running controller and its API: ``url``, ``http`` (an httpx client on it, with
    the admin's ``token``), ``workdir`` (a submit directory open to jobs)."""

    controller: Controller
    server: ApiServer
    http: httpx.Client
    workdir: Path
    token: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def store(self) -> Store:
        assert self.controller.store is not None
        return self.controller.store

    def token_for(self, name: str, role: str = "user", projects: dict[str, str] | None = None,
                  **token: Any) -> str:
        """A token of ``name`` (made a user of ``role`` if new, member of ``projects``:
        name → ``member`` or ``lead``), straight through the store."""
        store, now = self.store, self.controller.now()
        if store.get_user(name) is None:
            store.create_user(name, role=role, ts=now, by="test")
        for project, project_role in (projects or {}).items():
            if store.get_project(project) is None:
                store.create_project(project, ts=now, by="test")
            store.add_member(project, name, role=project_role, ts=now, by="test")
        return store.create_token(name, ts=now, by="test", **token)[1]

    @property
    def denials(self) -> DenialLog:
        """The API's log of refused requests (``flush()`` writes the coalesced ones)."""
        denials: DenialLog = self.server.app.state.denials
        return denials

    def client_for(self, token: str | None) -> httpx.Client:
        """An httpx client on the API sending ``token`` (None: no token at all)."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)

    def submit(self, script: str | None = SCRIPT, *argv: str, **body: Any) -> httpx.Response:
        payload = {"script": script, "argv": list(argv), "cwd": str(self.workdir),
                   "env": {"PATH": "/usr/bin:/bin", "SECRET_TOKEN": "hunter2"},
                   "source": "job.sh", **body}
        return self.http.post("/v1/jobs", json=payload)

    def submit_ok(self, script: str | None = SCRIPT, *argv: str) -> list[int]:
        response = self.submit(script, *argv)
        assert response.status_code == 201, response.text
        ids: list[int] = response.json()["job_ids"]
        return ids

    def last_seq(self) -> int:
        assert self.controller.store is not None
        return self.controller.store.last_seq()

    def wait(self, job_id: int, done: Callable[[JobRow], bool], timeout_s: float = 20.0,
             step: bool = True) -> JobRow:
        """Until ``done(job)``; steps the scheduler itself unless its loop runs."""
        deadline = time.monotonic() + timeout_s
        while True:
            if step:
                self.controller.step()
            row = self.controller.get_job(job_id)
            if done(row):
                return row
            assert time.monotonic() < deadline, f"job {job_id} still {row.state}"
            time.sleep(0.02)


@contextmanager
def running_site(*, loop: bool = False, clock: Callable[[], float] | None = None,
                 **config: Any) -> Iterator[Site]:
    """A controller with one 2-GPU node (``loop=False``: the test calls ``step()``), its
    API on a free port of 127.0.0.1, torn down with everything it started. ``clock``: the
    controller's (and so the API's) clock."""
    data = Path(tempfile.mkdtemp(prefix="gefion-api-test-", dir="/tmp"))
    data.chmod(0o755)
    workdir = data / "work"
    workdir.mkdir()
    settings: dict[str, Any] = {"node_name": NODE, "emulate_gpus": 2, "kill_grace_s": 1,
                                "refresh_s": 0.2, **config}
    controller = Controller(ControllerConfig(data_dir=data / "gefion", **settings),
                            clock=clock)
    controller.start(loop=loop)
    assert controller.store is not None
    now = controller.now()
    token = bootstrap_admin(controller.store, admin=ME, default_project="default", ts=now)
    assert token is not None
    for project in ("nlp", "bio"):
        controller.store.create_project(project, ts=now, by="test")
    server = ApiServer(create_app(controller)).start()
    http = httpx.Client(base_url=server.url, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})
    try:
        yield Site(controller, server, http, workdir, token)
    finally:
        http.close()
        server.stop(wait=False)  # its thread ends on its own, without delaying the test
        server.app.state.denials.close()
        executor = controller.executor
        for job_id in list(executor.active) if executor is not None else ():
            executor.cancel(job_id)
        controller.stop()
        shutil.rmtree(data, ignore_errors=True)


class Stepper:
    """Steps the scheduler in a thread, as its loop would, while a test blocks on a
    stream."""

    def __init__(self, controller: Controller, every_s: float = 0.02) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(controller, every_s),
                                        daemon=True)

    def _run(self, controller: Controller, every_s: float) -> None:
        while not self._stop.wait(every_s):
            controller.step()

    def __enter__(self) -> Stepper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
