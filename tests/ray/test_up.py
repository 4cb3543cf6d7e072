"""``gefion up --executor ray`` as a user runs it: with no address it starts a one-node Ray
head of its own on 127.0.0.1 (inside a loopback namespace here) and runs jobs on it; bad
options exit 2 naming the field, before Ray is started."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import GefionRunner
from tests.raycluster import LoopbackNamespace

pytestmark = pytest.mark.slow

#: Inside the namespace: submit a 1-node job through the API, wait, print its end and output.
CLIENT = textwrap.dedent("""
    import json, sys, time
    from gefion.client import Client
    url, workdir = sys.argv[1], sys.argv[2]
    script = "#!/bin/sh\\nsrun sh -c 'echo rank $RANK of $WORLD_SIZE on $SLURMD_NODENAME'\\n"
    with Client(url, user="root") as client:
        job_id = client.submit(script, cwd=workdir, env={"PATH": "/usr/bin:/bin"}).job_ids[0]
        deadline = time.monotonic() + 60
        while client.job(job_id).state not in ("COMPLETED", "FAILED", "CANCELLED"):
            assert time.monotonic() < deadline, "the job did not end"
            time.sleep(0.1)
        print(json.dumps({"state": client.job(job_id).state,
                          "out": client.logs(job_id), "nodes": [n.name for n in client.nodes()]}))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_of(pid: int, timeout_s: float = 10.0) -> int:
    """The host pid of ``pid``'s one child (nsenter forks the command it runs)."""
    deadline = time.monotonic() + timeout_s
    while True:
        kids = [int(k) for task in Path(f"/proc/{pid}/task").iterdir()
                for k in (task / "children").read_text().split()]
        if kids:
            return kids[0]
        assert time.monotonic() < deadline, f"process {pid} started nothing"
        time.sleep(0.01)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (Ray's socket paths must stay under 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="gefion-up-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_up_with_a_local_ray_head_runs_jobs_on_it(short_dir: Path) -> None:
    data, work, home = short_dir / "data", short_dir / "work", short_dir / "home"
    for path in (work, home):
        path.mkdir()
    work.chmod(0o755)
    env = {**os.environ, "HOME": str(home), "RAY_TMPDIR": str(short_dir),
           "RAY_USAGE_STATS_ENABLED": "0"}
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ADDRESS"):
        env.pop(name, None)
    with LoopbackNamespace() as ns:
        proc = ns.popen([sys.executable, "-m", "gefion.cli.main", "up", "--executor", "ray",
                         "--data-dir", data, "--port", "0", "--emulate-gpus", "4",
                         "--kill-grace", "1"],
                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        up_pid = child_of(proc.pid)
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            deadline = time.monotonic() + 90
            while not any("Ctrl-C" in line for line in lines):
                line = proc.stdout.readline()
                assert line and time.monotonic() < deadline, "".join(lines)
                lines.append(line)
            text = "".join(lines)
            ray_line = next(line for line in lines if line.strip().startswith("Ray"))
            assert "a local head on 127.0.0.1: 1 nodes, 4 GPUs" in ray_line, text
            url = (data / "api.url").read_text().strip()
            admin = {"GEFION_TOKEN": (data / "admin.token").read_text().strip()}  # issue #5
            client = ns.run([sys.executable, "-c", CLIENT, url, work], env={**env, **admin},
                            timeout_s=120)
            assert client.returncode == 0, client.stderr
            result = json.loads(client.stdout.splitlines()[-1])
            assert result["state"] == "COMPLETED", result
            node = result["nodes"][0]
            assert result["out"] == f"rank 0 of 1 on {node}\n"  # one node: no prefix
            os.kill(up_pid, signal.SIGINT)  # Ctrl-C to gefion up itself, not to nsenter
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, text + out
            assert "gefion controller stopped" in out
        finally:
            if proc.poll() is None:
                for pid in (up_pid, proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                proc.communicate(timeout=30)
    leftover = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert leftover == []  # no token file left in the user's home


@pytest.mark.parametrize(("args", "needle"), [
    (("--ray-address", "127.0.0.1:6379"), "--ray-address and --topology go with "
                                          "--executor ray"),
    (("--executor", "slurm"), "field 'executor'"),
    (("--executor", "ray", "--ray-address", "127.0.0.1:{port}"),
     "cannot reach a Ray cluster at 127.0.0.1:"),
    (("--executor", "ray", "--cluster", "gefion"), "field 'cluster'"),
], ids=["address-without-ray", "unknown-executor", "unreachable", "emulated-cluster"])
def test_bad_ray_options_exit_2_naming_the_field(run_gefion: GefionRunner, short_dir: Path,
                                                 args: tuple[str, ...], needle: str) -> None:
    argv = [a.format(port=free_port()) for a in args]
    proc = run_gefion("up", "--data-dir", short_dir / "data", "--port", "0", *argv,
                      timeout_s=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
