"""Crash safety: ``kill -9`` the controller while 200 submissions stream in and jobs run.

A real ``gefion up`` process (on SQLite and on PostgreSQL) takes submissions from 8
concurrent clients; when half of them are acknowledged it is killed with SIGKILL and
started again on the same data directory and port. Then:

* every acknowledged submission is there exactly once (clients retry with their
  idempotency keys while the server is down, as the Python client does);
* a job that finished while the controller was down has its true exit code;
* a job that was running is re-attached and completes normally.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gefion.client import Client
from gefion.client.errors import ServerUnreachable
from gefion.core.jobs import JobState
from gefion.store import Store

pytestmark = pytest.mark.slow

CLIENTS, PER_CLIENT = 8, 25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_up(data_dir: Path, db_url: str, port: int,
             log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``gefion up``, and the admin token its first start wrote to DATA/admin.token."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gefion.cli.main", "up", "--data-dir", str(data_dir),
             "--db", db_url, "--port", str(port), "--emulate-gpus", "8", "--kill-grace", "1"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    token_file = data_dir / "admin.token"
    while not token_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    token = token_file.read_text().strip() if token_file.exists() else None
    with Client(f"http://127.0.0.1:{port}", token=token, retries=0) as probe:
        while True:
            try:
                probe.cluster()
                assert token is not None
                return proc, token
            except ServerUnreachable:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError("gefion up did not come up:\n" + log.read_text()) \
                        from None
                time.sleep(0.05)


def wait_for(client: Client, job_id: int, done: Callable[[str], bool],
             timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        state = client.job(job_id).state
        if done(state):
            return state
        assert time.monotonic() < deadline, f"job {job_id} still {state}"
        time.sleep(0.05)


def test_kill_9_loses_no_acknowledged_submission(data_dir: Path, backend: str,
                                                 url_factory: Callable[[str], str],
                                                 tmp_path: Path) -> None:
    db_url, port, log = url_factory(backend), free_port(), tmp_path / "up.log"
    work = data_dir / "work"
    work.mkdir()
    server = f"http://127.0.0.1:{port}"
    proc, token = start_up(data_dir, db_url, port, log)
    try:
        client = Client(server, token=token, retries=0)
        survivor = client.submit("#!/bin/sh\nsleep 4\nexit 0\n", cwd=str(work)).job_ids[0]
        ends_down = client.submit("#!/bin/sh\nsleep 1.5\nexit 7\n", cwd=str(work)).job_ids[0]
        for job_id in (survivor, ends_down):
            wait_for(client, job_id, lambda s: s == "RUNNING")

        acked: dict[str, list[int]] = {}
        lock = threading.Lock()
        half = threading.Event()
        failures: list[BaseException] = []

        def submitter(n: int) -> None:
            with Client(server, token=token, retries=0) as mine:
                for i in range(PER_CLIENT):
                    key = f"client{n}-{i}"
                    deadline = time.monotonic() + 60
                    while True:  # resend with the same key until the server answers
                        try:
                            result = mine.submit("#!/bin/sh\nexit 0\n", cwd=str(work),
                                                 argv=["--gpus=0"], idempotency_key=key)
                            break
                        except ServerUnreachable:
                            if time.monotonic() > deadline:
                                raise
                            time.sleep(0.05)
                    with lock:
                        acked[key] = list(result.job_ids)
                        if len(acked) >= CLIENTS * PER_CLIENT // 2:
                            half.set()

        def run(n: int) -> None:
            try:
                submitter(n)
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        assert half.wait(60), "the clients got nowhere"
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 the controller (its API is in it)
        proc.wait()
        time.sleep(2.0)  # meanwhile the exit-7 job ends, with nobody to hear it
        proc, _ = start_up(data_dir, db_url, port, log)  # the same site: the same token
        for thread in threads:
            thread.join(120)
        assert not failures, failures
        assert len(acked) == CLIENTS * PER_CLIENT

        assert wait_for(client, ends_down, lambda s: s not in ("PENDING", "RUNNING")) == \
            "FAILED"
        assert client.job(ends_down).exit_code == 7
        assert wait_for(client, survivor, lambda s: s not in ("PENDING", "RUNNING")) == \
            "COMPLETED"
        assert client.job(survivor).exit_code == 0
        for ids in acked.values():
            for job_id in ids:
                wait_for(client, job_id, lambda s: s not in ("PENDING", "RUNNING"))
        client.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    with Store.open(db_url) as store:
        rows = list(store.list_jobs(limit=10_000))
    keyed = [r for r in rows if r.idempotency_key is not None
             and r.id not in (survivor, ends_down)]
    # The API keeps a key in its user's space: "USER:KEY".
    user_keys = [str(r.idempotency_key).split(":", 1)[1] for r in keyed]
    assert sorted(user_keys) == sorted(acked)  # each key once
    by_key = {key: r.id for key, r in zip(user_keys, keyed, strict=True)}
    assert all(by_key[key] == ids[0] for key, ids in acked.items())
    assert len(rows) == CLIENTS * PER_CLIENT + 2  # nothing made twice
    odd = {r.id: (r.state.value, r.exit_code) for r in rows
           if r.id != ends_down and r.state is not JobState.COMPLETED}
    if odd:
        with Store.open(db_url) as store:
            raise AssertionError(f"{odd}: {store.events_for_job(min(odd))}")
