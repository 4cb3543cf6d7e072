"""Durability: a submission acknowledged before ``kill -9`` is there after, exactly once."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from gefion.store import EventKind, Store
from tests.store.builders import all_jobs, new_job

CHILD = Path(__file__).with_name("crash_child.py")
ACKS_BEFORE_KILL = 150


def _pump(stream: object, lines: queue.Queue[bytes | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)
    lines.put(None)


def test_acknowledged_submissions_survive_kill_9(
        backend: str, url_factory: Callable[[str], str]) -> None:
    url = url_factory(backend)
    Store.open(url).close()  # migrate here, so the child starts submitting at once
    child = subprocess.Popen([sys.executable, str(CHILD), url], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    lines: queue.Queue[bytes | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True)
    reader.start()
    acked: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(acked) < ACKS_BEFORE_KILL:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"the child died: {child.stderr.read().decode()}")  # type: ignore[union-attr]
            if line.strip() != b"ready":
                acked += map(int, line.split())
        os.kill(child.pid, signal.SIGKILL)  # mid-stream: four submitters are busy
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        reader.join(timeout=30)
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]
    assert child.returncode == -signal.SIGKILL
    while (line := lines.get_nowait()) is not None:  # acknowledged before it died
        if line.endswith(b"\n"):
            acked += map(int, line.split())

    with Store.open(url) as store:
        jobs = all_jobs(store)
        log = store.events_since(0, limit=10_000)
        submitted = Counter(e.job_id for e in log if e.kind == EventKind.JOB_SUBMITTED)
        assert len(acked) == len(set(acked)) >= ACKS_BEFORE_KILL
        missing = set(acked) - set(jobs)
        assert not missing, f"acknowledged but lost: {sorted(missing)[:10]}"
        assert set(submitted.values()) == {1}  # each job submitted exactly once
        assert set(submitted) == set(jobs)  # and the projection agrees with the log
        assert [e.seq for e in log] == list(range(1, len(log) + 1))
        # the store carries on: new ids follow every id handed out before the crash
        (new_id,) = store.submit([new_job()], ts=0.0)
        assert new_id > max(jobs)
