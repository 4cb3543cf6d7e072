"""A real Ray cluster on loopback (one per test module) and a controller on the Ray executor
driving it from inside the same namespace, reached through :class:`RemoteController`."""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.raycluster import RayCluster, loopback_ray_cluster

REPO = Path(__file__).resolve().parents[2]
#: The controller's answers come within this long, or the test fails (seconds).
ANSWER_TIMEOUT_S = 60.0


class RemoteController:
    """The harness (``tests/ray/harness.py``) in the cluster's namespace, one JSON line per
    request."""

    def __init__(self, cluster: RayCluster, data_dir: Path) -> None:
        self.cluster, self.data_dir = cluster, data_dir
        self.log = data_dir / "harness.log"
        self._start()

    def restart(self) -> None:
        """Stop the controller (its gangs go on) and start a new one on the same data."""
        self.stop()
        self._start()

    def _start(self) -> None:
        cluster, data_dir = self.cluster, self.data_dir
        with self.log.open("ab") as log:
            self.proc = cluster.ns.popen(
                [sys.executable, "-m", "tests.ray.harness", data_dir, cluster.address],
                cwd=REPO, env=cluster.driver_env(RAY_USAGE_STATS_ENABLED="0"),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        self.nodes: list[str] = self._answer(timeout_s=120)["nodes"]

    def _answer(self, timeout_s: float = ANSWER_TIMEOUT_S) -> Any:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            raise AssertionError(f"the controller did not answer:\n{self.log.read_text()}")
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(answer["error"])
        return answer["ok"]

    def call(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def submit(self, workdir: Path, script: str, *argv: str,
               env: dict[str, str] | None = None) -> int:
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", **(env or {})}
        ids = self.call("submit", cwd=str(workdir), script=script, argv=list(argv), env=env)
        return int(ids[0])

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(self.call("job", id=job_id))

    def wait_for(self, job_id: int, done: Callable[[dict[str, Any]], bool],
                 timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            row = self.job(job_id)
            if done(row):
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {row['state']} after {timeout_s} s:"
                                     f" {row}\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def events(self, job_id: int | None = None) -> list[dict[str, Any]]:
        events = self.call("events")
        return [e for e in events if job_id is None or e["job_id"] == job_id]

    def alive(self, pids: list[int]) -> list[int]:
        return list(self.call("alive", pids=pids))

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("stop")
                self.proc.wait(timeout=30)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def ended(row: dict[str, Any]) -> bool:
    return row["state"] in ("COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL")


def state_is(*states: str) -> Callable[[dict[str, Any]], bool]:
    return lambda row: row["state"] in states


def wait_file(path: Path, lines: int = 1, timeout_s: float = 60.0) -> list[str]:
    """The complete lines of ``path`` once it has at least ``lines`` of them."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = path.read_text() if path.exists() else ""
        done = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
        if len(done) >= lines:
            return done
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} has {len(done)} of {lines} lines: {text!r}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    """Three Ray nodes on loopback, 8 GPUs each (declared), for the whole module."""
    with loopback_ray_cluster(nodes=3, gpus_per_node=8) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def controller(ray_cluster: RayCluster) -> Iterator[RemoteController]:
    data_dir = Path(tempfile.mkdtemp(prefix="gefion-ray-test-", dir="/tmp"))
    data_dir.chmod(0o755)
    remote = RemoteController(ray_cluster, data_dir)
    try:
        yield remote
    finally:
        remote.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gefion-ray-work-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
