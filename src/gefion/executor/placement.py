"""Which task of a job step runs where, with which GPUs — and the environment each task sees.

Pure functions, separate from process spawning: ``srun`` on the local executor places tasks
with :func:`place_tasks` and starts them here; a multi-node executor places them the same way
and starts each on its node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gefion.executor.env import format_counts, tasks_per_node
from gefion.executor.errors import ExecutorError
from gefion.formats.hostlist import compress


class PlacementError(ExecutorError):
    """A step that cannot be laid out on the job's nodes and GPUs."""


@dataclass(frozen=True, slots=True)
class TaskPlacement:
    """Task ``procid`` of a step: its node (and that node's index in the step), its rank on
    the node, and the GPU indices it sees."""

    procid: int
    node: str
    node_id: int
    local_id: int
    gpus: tuple[int, ...]


def split_gpus(gpus: Sequence[int], ntasks: int) -> list[tuple[int, ...]]:
    """Share a node's ``gpus`` among its ``ntasks`` tasks, evenly and in order.

    Contiguous blocks whose sizes differ by at most one, the first tasks taking the larger
    ones (8 over 3 → 3, 3, 2). With fewer GPUs than tasks every task sees one GPU, taken in
    turn (2 over 3 → 0, 1, 0): a task is never left without a GPU on a node that has some.
    """
    if not gpus:
        return [() for _ in range(ntasks)]
    if len(gpus) < ntasks:
        return [(gpus[i % len(gpus)],) for i in range(ntasks)]
    base, extra = divmod(len(gpus), ntasks)
    out: list[tuple[int, ...]] = []
    start = 0
    for i in range(ntasks):
        size = base + (1 if i < extra else 0)
        out.append(tuple(gpus[start:start + size]))
        start += size
    return out


def place_tasks(ntasks: int, nodes: Sequence[str], node_gpus: Mapping[str, Sequence[int]], *,
                ntasks_per_node: int | None = None,
                gpus_per_task: int | None = None) -> tuple[TaskPlacement, ...]:
    """Lay ``ntasks`` tasks out on ``nodes`` (block distribution: consecutive ranks share a
    node, the first nodes take one more when uneven).

    ``node_gpus`` maps each node to the job's GPU indices there. Without ``gpus_per_task`` a
    node's GPUs are shared out by :func:`split_gpus`; with it, each task gets that many of its
    own, and a node without enough is an error. Raises :class:`PlacementError` naming what
    does not fit.
    """
    if ntasks < 1:
        raise PlacementError(f"a step needs at least one task, got {ntasks}")
    if not nodes:
        raise PlacementError("a step needs at least one node")
    if ntasks < len(nodes):
        raise PlacementError(f"cannot run {ntasks} task(s) on {len(nodes)} nodes: "
                             "every node needs at least one")
    if ntasks_per_node is not None and ntasks > len(nodes) * ntasks_per_node:
        raise PlacementError(f"{ntasks} tasks do not fit {len(nodes)} node(s) with "
                             f"--ntasks-per-node={ntasks_per_node}")
    if gpus_per_task is not None and gpus_per_task < 1:
        raise PlacementError(f"--gpus-per-task must be >= 1, got {gpus_per_task}")
    placements: list[TaskPlacement] = []
    for node_id, (node, count) in enumerate(zip(nodes, tasks_per_node(ntasks, len(nodes)),
                                                strict=True)):
        gpus = tuple(node_gpus.get(node, ()))
        if gpus_per_task is None:
            shares = split_gpus(gpus, count)
        else:
            if count * gpus_per_task > len(gpus):
                raise PlacementError(
                    f"{count} task(s) × --gpus-per-task={gpus_per_task} need "
                    f"{count * gpus_per_task} GPUs on {node}, but the job has {len(gpus)} there")
            shares = [gpus[i * gpus_per_task:(i + 1) * gpus_per_task] for i in range(count)]
        for local_id, share in enumerate(shares):
            placements.append(TaskPlacement(len(placements), node, node_id, local_id, share))
    return tuple(placements)


def task_environment(base: Mapping[str, str], step: Sequence[TaskPlacement],
                     task: TaskPlacement, *, step_id: int, gpus_per_task: int | None = None,
                     cpus_per_task: int | None = None) -> dict[str, str]:
    """The environment of ``task`` of ``step``: the job's (``base``) with the step's and the
    task's ``SLURM_*`` variables and the task's ``CUDA_VISIBLE_DEVICES``."""
    nodes = list(dict.fromkeys(t.node for t in step))
    counts = format_counts([sum(1 for t in step if t.node == n) for n in nodes])
    node_gpus = sorted({g for t in step if t.node == task.node for g in t.gpus})
    env = dict(base)
    env.update({
        "SLURM_STEP_ID": str(step_id),
        "SLURM_STEPID": str(step_id),
        "SLURM_PROCID": str(task.procid),
        "SLURM_LOCALID": str(task.local_id),
        "SLURM_NODEID": str(task.node_id),
        "SLURMD_NODENAME": task.node,
        "SLURM_NTASKS": str(len(step)),
        "SLURM_NPROCS": str(len(step)),
        "SLURM_STEP_NUM_TASKS": str(len(step)),
        "SLURM_NNODES": str(len(nodes)),
        "SLURM_STEP_NUM_NODES": str(len(nodes)),
        "SLURM_NODELIST": compress(nodes),
        "SLURM_STEP_NODELIST": compress(nodes),
        "SLURM_TASKS_PER_NODE": counts,
        "SLURM_STEP_TASKS_PER_NODE": counts,
        "CUDA_VISIBLE_DEVICES": ",".join(map(str, task.gpus)),
    })
    if node_gpus:
        env["SLURM_STEP_GPUS"] = ",".join(map(str, node_gpus))
    else:
        env.pop("SLURM_STEP_GPUS", None)
    if gpus_per_task is not None:
        env["SLURM_GPUS_PER_TASK"] = str(gpus_per_task)
    if cpus_per_task is not None:
        env["SLURM_CPUS_PER_TASK"] = str(cpus_per_task)
    return env
