"""``srun`` in a gang, without Ray: the real ``srun`` (a subprocess, as a job runs it) talks to
a :class:`StepServer` whose steps run on two stand-in "nodes" (each a
:class:`NodeTasks`, both on this host) — the relay's framing, prefixes, exit codes, signal
forwarding and the kill when srun goes away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gefion.executor.ray.relay import EXIT, FrameWriter, StepHandle, StepServer
from gefion.executor.ray.tasks import NodeTasks
from gefion.executor.users import resolve_account
from tests.executor.helpers import ME, gone, wait_until

NODES = ("a", "b")


class TwoNodeStep(StepHandle):
    def __init__(self, nodes: dict[str, NodeTasks], request: dict[str, Any],
                 writer: FrameWriter) -> None:
        self.nodes, self.key = nodes, f"step{request['step_id']}"
        self.codes: dict[int, int] = {}
        self.threads = []
        for name, tasks in nodes.items():
            mine = [(t["procid"], t["env"]) for t in request["tasks"] if t["node"] == name]
            if not mine:
                continue
            chunks = tasks.run(self.key, request["argv"], request["cwd"], mine,
                               resolve_account(ME), bool(request["label"]))
            thread = threading.Thread(target=self._relay, args=(mine, chunks, writer))
            thread.start()
            self.threads.append(thread)

    def _relay(self, mine: list[tuple[int, Any]], chunks: Iterator[Any],
               writer: FrameWriter) -> None:
        for tag, data in chunks:
            if tag == EXIT:
                self.codes.update((procid, code) for (procid, _), code in zip(mine, data,
                                                                              strict=True))
            else:
                writer.send(tag, data)

    def signal(self, signum: int) -> None:
        for tasks in self.nodes.values():
            tasks.signal(self.key, signum)

    def kill(self) -> None:
        for tasks in self.nodes.values():
            tasks.kill(self.key)

    def wait(self) -> list[int]:
        for thread in self.threads:
            thread.join()
        return [self.codes[p] for p in sorted(self.codes)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[StepServer, dict[str, NodeTasks]]]:
    nodes = {name: NodeTasks(name, prefix_nodes=True) for name in NODES}
    account = resolve_account(ME)
    srv = StepServer(str(tmp_path / "step.sock"),
                     lambda request, writer: TwoNodeStep(nodes, request, writer),
                     uid=account.uid, gid=account.gid)
    yield srv, nodes
    for tasks in nodes.values():
        tasks.kill()
    srv.close()


def srun(server: StepServer, tmp_path: Path, *argv: str, **popen: Any) -> Any:
    env = {"PATH": os.environ["PATH"], "SLURM_JOB_NODELIST": "a,b", "SLURM_NTASKS": "2",
           "SLURM_JOB_ID": "7", "GEFION_STEP_SOCKET": server.path,
           "GEFION_NODE_GPUS": json.dumps({"a": [0, 1], "b": [4, 5]}),
           "GEFION_JOB_DIR": str(tmp_path), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    return subprocess.Popen([sys.executable, "-m", "gefion.executor.srun", *argv], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def test_tasks_run_on_their_nodes_with_prefixed_output_and_the_worst_exit_code(
        server: tuple[StepServer, dict[str, NodeTasks]], tmp_path: Path) -> None:
    proc = srun(server[0], tmp_path, "-n", "4", "-l", "sh", "-c",
                'echo "$RANK/$WORLD_SIZE $NODE_RANK $LOCAL_RANK gpus $CUDA_VISIBLE_DEVICES"; '
                'echo oops >&2; exit $SLURM_PROCID')
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert sorted(out.splitlines()) == ["a: 0: 0/4 0 0 gpus 0", "a: 1: 1/4 0 1 gpus 1",
                                        "b: 2: 2/4 1 0 gpus 4", "b: 3: 3/4 1 1 gpus 5"]
    assert sorted(line for line in err.splitlines() if "oops" in line) == [
        "a: 0: oops", "a: 1: oops", "b: 2: oops", "b: 3: oops"]
    assert "srun: error: b: task 3: Exited with exit code 3" in err


def test_a_signal_to_srun_reaches_every_task(server: tuple[StepServer, dict[str, NodeTasks]],
                                             tmp_path: Path) -> None:
    proc = srun(server[0], tmp_path, "sh", "-c",
                'trap "echo got USR1; exit 0" USR1; echo ready; while :; do sleep 0.05; done')
    assert proc.stdout is not None
    assert sorted(proc.stdout.readline() for _ in NODES) == ["a: ready\n", "b: ready\n"]
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert sorted(line for line in out.splitlines() if "got" in line) == [
        "a: got USR1", "b: got USR1"]


def test_tasks_die_when_srun_goes_away(server: tuple[StepServer, dict[str, NodeTasks]],
                                       tmp_path: Path) -> None:
    _, nodes = server
    proc = srun(server[0], tmp_path, "sleep", "300")
    assert wait_until(lambda: sum(len(t.running()) for t in nodes.values()) == 2, 10)
    pids = [p for t in nodes.values() for p in t.running()]
    proc.kill()
    proc.communicate(timeout=10)
    assert wait_until(lambda: all(gone(p) for p in pids), 10)


def test_no_launcher_is_an_srun_error(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "SLURM_JOB_NODELIST": "a,b",
           "GEFION_STEP_SOCKET": str(tmp_path / "nobody.sock")}
    proc = subprocess.run([sys.executable, "-m", "gefion.executor.srun", "true"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "srun: error: cannot reach the gang's launcher" in proc.stderr
