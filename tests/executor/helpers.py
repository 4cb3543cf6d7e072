"""Helpers for the executor's tests: watching real processes and collecting job exits."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gefion.executor import _layout as L
from gefion.executor.local import LocalExecutor
from gefion.executor.spec import JobExit, LaunchSpec

SpecFactory = Callable[..., LaunchSpec]

ME = pwd.getpwuid(os.geteuid()).pw_name


def gone(pid: int) -> bool:
    """True when process ``pid`` no longer runs (a zombie nobody reaps counts as gone)."""
    return not os.path.exists(f"/proc/{pid}") or L.proc_is_zombie(pid)


def group_gone(pgid: int) -> bool:
    """True when no live process is left in process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != b"Z":
                return False
    return True


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def read_pid(path: Path, timeout_s: float = 5.0) -> int:
    """The pid a job writes to ``path`` (``echo $! > path``), once the line is complete."""
    assert wait_until(lambda: path.exists() and path.read_text().endswith("\n"), timeout_s), \
        f"{path} was not written"
    return int(path.read_text())


def kill_leftovers(run_dir: Path) -> None:
    """SIGKILL every job still supervised in ``run_dir`` (supervisor and process group)."""
    if not run_dir.exists():
        return
    for job_dir in run_dir.iterdir():
        if not job_dir.name.isdigit():
            continue
        fd = L.try_lock(str(job_dir / L.SPEC))
        if fd is not None:
            os.close(fd)
            continue
        # A supervisor writes state.json just after its script started: give it a moment.
        wait_until(lambda d=job_dir: (d / L.STATE).exists(), timeout_s=2)
        state: dict[str, Any] | None = L.read_json(str(job_dir / L.STATE))
        if state is None:
            continue
        for kill, target in ((os.killpg, state["pgid"]), (os.kill, state["supervisor_pid"])):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(target, signal.SIGKILL)
        wait_until(lambda d=job_dir: _unlocked(d))


def _unlocked(job_dir: Path) -> bool:
    fd = L.try_lock(str(job_dir / L.SPEC))
    if fd is None:
        return False
    os.close(fd)
    return True


class Exits:
    """Collects what ``poll`` reports, checking that no job is reported twice."""

    def __init__(self, executor: LocalExecutor) -> None:
        self.executor = executor
        self.seen: dict[int, JobExit] = {}

    def collect(self) -> list[JobExit]:
        new = self.executor.poll()
        for end in new:
            assert end.job_id not in self.seen, f"job {end.job_id} reported twice"
            self.seen[end.job_id] = end
        return new

    def wait_for(self, job_id: int, timeout_s: float = 10.0) -> JobExit:
        deadline = time.monotonic() + timeout_s
        while job_id not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not end within {timeout_s} s")
            self.executor.wait(0.1)
            self.collect()
        return self.seen[job_id]
