"""Gangs on a real Ray cluster: three Ray nodes on loopback (8 declared GPUs each), a
controller on the Ray executor in the same namespace, real batch scripts.

Issue #6's acceptance: a 2-node job runs one process per node with its rank, one
``MASTER_ADDR`` and the GPUs of its own node, and a ``torch.distributed`` all-reduce over
gloo completes through those variables; a Slurm-style script with ``srun`` and ``scontrol
show hostnames`` runs unchanged; cancel and time limits end the gang on every node; and —
last, since it takes a node away — a node killed mid-job fails the gang, which is requeued
and completes on the healthy nodes, the events telling the story in order.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.ray.conftest import RemoteController, ended, state_is, wait_file
from tests.raycluster import RayCluster

pytestmark = pytest.mark.slow

PY = sys.executable

ALLREDUCE = """\
import json, os
import torch
import torch.distributed as dist

dist.init_process_group("gloo")  # env://: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
print(json.dumps({name: os.environ[name] for name in (
    "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "NNODES",
    "MASTER_ADDR", "MASTER_PORT", "CUDA_VISIBLE_DEVICES", "SLURMD_NODENAME")}
    | {"sum": value.item(), "pid": os.getpid()}), flush=True)
dist.destroy_process_group()
"""


def output_lines(workdir: Path, job_id: int) -> list[str]:
    return (workdir / f"slurm-{job_id}.out").read_text().splitlines()


def by_node(lines: list[str]) -> dict[str, list[str]]:
    """``node: text`` lines grouped by node; other lines under ``""``."""
    out: dict[str, list[str]] = {}
    for line in lines:
        node, sep, text = line.partition(": ")
        key = node if sep and node.startswith("gefion-node") else ""
        out.setdefault(key, []).append(text if key else line)
    return out


def test_a_two_node_job_all_reduces_over_gloo_through_the_rendezvous_variables(
        controller: RemoteController, workdir: Path) -> None:
    pytest.importorskip("torch")
    (workdir / "allreduce.py").write_text(ALLREDUCE)
    script = ("#!/bin/sh\n#SBATCH -N 2 --gpus-per-node=8 -t 2\n"
              "echo \"batch $SLURMD_NODENAME $NODE_RANK/$NNODES $MASTER_ADDR:$MASTER_PORT\"\n"
              f"srun {PY} allreduce.py\n")
    job_id = controller.submit(workdir, script, env={"GLOO_SOCKET_IFNAME": "lo"})
    row = controller.wait_for(job_id, ended, timeout_s=90)
    lines = output_lines(workdir, job_id)
    assert row["state"] == "COMPLETED", "\n".join(lines)
    allocation = dict((node, gpus) for node, gpus in row["allocation"])
    assert len(allocation) == 2 and all(len(g) == 8 for g in allocation.values())
    groups = by_node(lines)
    batch = groups.pop("")
    first, second = (node for node, _ in row["allocation"])
    assert batch[0].startswith(f"batch {first} 0/2 127.0.0.1:")
    ranks = {node: json.loads(texts[-1]) for node, texts in groups.items()}
    assert set(ranks) == {first, second}  # one process per node, its output prefixed
    assert [ranks[first]["RANK"], ranks[second]["RANK"]] == ["0", "1"]
    assert [ranks[first]["NODE_RANK"], ranks[second]["NODE_RANK"]] == ["0", "1"]
    for node, rank in ranks.items():
        assert rank["SLURMD_NODENAME"] == node
        assert (rank["WORLD_SIZE"], rank["LOCAL_WORLD_SIZE"], rank["NNODES"]) == ("2", "1", "2")
        assert rank["LOCAL_RANK"] == "0"
        assert rank["CUDA_VISIBLE_DEVICES"] == ",".join(map(str, allocation[node]))
        assert rank["sum"] == 3.0  # 1 + 2: the all-reduce went through
    assert len({(r["MASTER_ADDR"], r["MASTER_PORT"]) for r in ranks.values()}) == 1
    assert batch[0].endswith(f"{ranks[first]['MASTER_ADDR']}:{ranks[first]['MASTER_PORT']}")
    # disjoint GPU sets: no (node, GPU) pair is given to two ranks
    pairs = [(node, g) for node, r in ranks.items()
             for g in r["CUDA_VISIBLE_DEVICES"].split(",")]
    assert len(pairs) == len(set(pairs)) == 16


SLURM_SCRIPT = """\
#!/bin/bash
#SBATCH --job-name=multi
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=2
#SBATCH --gpus-per-node=4
#SBATCH --time=2:00
set -e
nodes=( $(scontrol show hostnames "$SLURM_JOB_NODELIST") )
echo "head ${nodes[0]} of ${#nodes[@]}: $SLURM_JOB_NUM_NODES nodes, $SLURM_NTASKS tasks"
srun -l bash -c 'echo "task $SLURM_PROCID/$SLURM_NTASKS node $SLURM_NODEID $SLURMD_NODENAME \\
local $SLURM_LOCALID gpus $CUDA_VISIBLE_DEVICES"'
srun -N1 -n1 bash -c 'echo "alone on $SLURMD_NODENAME" >&2'
srun bash -c 'exit $SLURM_PROCID' || echo "srun failed: $?"
"""


def test_a_slurm_multi_node_script_runs_unchanged(controller: RemoteController,
                                                  workdir: Path) -> None:
    job_id = controller.submit(workdir, SLURM_SCRIPT)
    row = controller.wait_for(job_id, ended, timeout_s=60)
    lines = output_lines(workdir, job_id)
    assert row["state"] == "COMPLETED", "\n".join(lines)
    first, second = (node for node, _ in row["allocation"])
    gpus = {node: g for node, g in row["allocation"]}
    groups = by_node(lines)
    batch = groups.pop("")
    assert batch[0] == f"head {first} of 2: 2 nodes, 4 tasks"
    assert batch[-1] == "srun failed: 3"  # the highest task exit code
    tasks = sorted(text for texts in groups.values() for text in texts
                   if text[:1].isdigit())
    half = lambda node, k: ",".join(map(str, gpus[node][2 * k:2 * k + 2]))  # noqa: E731
    assert tasks == [
        f"0: task 0/4 node 0 {first} local 0 gpus {half(first, 0)}",
        f"1: task 1/4 node 0 {first} local 1 gpus {half(first, 1)}",
        f"2: task 2/4 node 1 {second} local 0 gpus {half(second, 0)}",
        f"3: task 3/4 node 1 {second} local 1 gpus {half(second, 1)}",
    ]
    assert f"alone on {first}" in groups[first]
    assert any("task 3: Exited with exit code 3" in line for line in batch)


def running_tasks(controller: RemoteController, workdir: Path, script_body: str,
                  header: str, *, tasks: int = 2) -> tuple[int, dict[str, int]]:
    """Submit a 2-node job whose srun tasks write ``node pid`` to ``pids`` then run
    ``script_body``; returns the job id and node → task pid once all run."""
    script = (f"#!/bin/sh\n#SBATCH -N 2 --gpus-per-node=8\n{header}"
              "srun sh -c 'echo \"$SLURMD_NODENAME $$\" >> pids; " + script_body + "'\n")
    job_id = controller.submit(workdir, script)
    lines = wait_file(workdir / "pids", tasks)
    return job_id, {node: int(pid) for node, pid in (line.split() for line in lines)}


def test_cancel_stops_the_gang_on_every_node(controller: RemoteController,
                                            workdir: Path) -> None:
    job_id, pids = running_tasks(controller, workdir, "exec sleep 300", "")
    assert len(pids) == 2 and controller.alive(list(pids.values())) == list(pids.values())
    controller.call("cancel", id=job_id)
    row = controller.wait_for(job_id, ended, timeout_s=30)
    assert row["state"] == "CANCELLED"
    assert controller.alive(list(pids.values())) == []


def test_a_time_limit_ends_the_gang_on_every_node_as_timeout(controller: RemoteController,
                                                            workdir: Path) -> None:
    started = time.monotonic()
    job_id, pids = running_tasks(controller, workdir, "exec sleep 300", "#SBATCH -t 0:04\n")
    row = controller.wait_for(job_id, ended, timeout_s=30)
    assert row["state"] == "TIMEOUT"
    assert 4 <= time.monotonic() - started < 20
    assert controller.alive(list(pids.values())) == []


def test_a_gang_goes_on_while_the_controller_restarts_and_is_reattached(
        controller: RemoteController, workdir: Path) -> None:
    job_id, pids = running_tasks(controller, workdir, "sleep 3; echo done", "")
    controller.restart()
    row = controller.wait_for(job_id, ended, timeout_s=60)
    assert row["state"] == "COMPLETED"
    assert sorted(by_node(output_lines(workdir, job_id))) == sorted(pids)
    assert all(texts == ["done"] for texts in by_node(output_lines(workdir, job_id)).values())
    assert [e["kind"] for e in controller.events(job_id)] == [
        "job.submitted", "job.started", "job.finished"]


RERUN = """\
#!/bin/sh
#SBATCH -N 2 --gpus-per-node=8 --requeue
if [ -e first-run ]; then
    srun sh -c 'echo "rerun on $SLURMD_NODENAME"'
    exit 0
fi
touch first-run
srun sh -c 'echo "$SLURMD_NODENAME $$" >> pids; exec sleep 300'
"""


def test_a_lost_node_fails_the_gang_which_is_requeued_and_completes_on_healthy_nodes(
        controller: RemoteController, ray_cluster: RayCluster, workdir: Path) -> None:
    job_id = controller.submit(workdir, RERUN)
    pids = dict(line.split() for line in wait_file(workdir / "pids", 2))
    first = controller.job(job_id)
    nodes = [node for node, _ in first["allocation"]]
    victim = next(n for n in nodes if n != "gefion-node1")  # the head takes the cluster along
    survivor = next(n for n in nodes if n != victim)
    ray_cluster.kill_node(victim)
    row = controller.wait_for(job_id, ended, timeout_s=60)
    assert row["state"] == "COMPLETED", output_lines(workdir, job_id)
    assert row["restarts"] == 1
    assert victim not in dict(row["allocation"])
    assert controller.alive([int(pids[survivor])]) == []  # stopped on the other node
    rerun = by_node(output_lines(workdir, job_id))
    assert sorted(rerun) == sorted(dict(row["allocation"]))
    assert all(texts == [f"rerun on {node}"] for node, texts in rerun.items())

    events = controller.events()
    mine = [e for e in events if e["job_id"] == job_id]
    assert [e["kind"] for e in mine] == ["job.submitted", "job.started", "job.node_fail",
                                         "job.requeued", "job.started", "job.finished"]
    down = [e for e in events if e["kind"] == "node.down"]
    assert [e["node"] for e in down] == [victim]
    fail = mine[2]
    assert fail["node"] == victim and victim in fail["payload"]["reason"]
    assert down[0]["seq"] < fail["seq"]
    node_state = {n["name"]: n["state"] for n in controller.call("nodes")}
    assert node_state[victim] == "down"

    # the node rejoins (a new Ray node, the same Gefion name): it is up again
    ray_cluster.add_node(labels={"gefion.io/node": victim})
    deadline = time.monotonic() + 30
    while {n["name"]: n["state"] for n in controller.call("nodes")}[victim] == "down":
        assert time.monotonic() < deadline, "the node did not come back up"
        time.sleep(0.2)
    assert [e["node"] for e in controller.events() if e["kind"] == "node.up"] == [victim]
    assert state_is("COMPLETED")(controller.job(job_id))
