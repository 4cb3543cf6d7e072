"""Task placement for a job step: which rank runs where, with which GPUs (pure)."""

from __future__ import annotations

import pytest

from gefion.executor.placement import (
    PlacementError,
    TaskPlacement,
    place_tasks,
    split_gpus,
    task_environment,
)

T = TaskPlacement


@pytest.mark.parametrize(("ntasks", "nodes", "gpus", "per_node", "per_task", "placed"), [
    pytest.param(1, ["n1"], (0, 1, 2, 3), None, None, [T(0, "n1", 0, 0, (0, 1, 2, 3))],
                 id="one-task-sees-all-gpus"),
    pytest.param(2, ["n1"], (0, 1, 2, 3), None, None,
                 [T(0, "n1", 0, 0, (0, 1)), T(1, "n1", 0, 1, (2, 3))],
                 id="two-tasks-split-four-gpus"),
    pytest.param(3, ["n1"], (0, 1, 2, 3, 4, 5, 6, 7), None, None,
                 [T(0, "n1", 0, 0, (0, 1, 2)), T(1, "n1", 0, 1, (3, 4, 5)),
                  T(2, "n1", 0, 2, (6, 7))], id="uneven-split-first-take-more"),
    pytest.param(3, ["n1"], (4, 5), None, None,
                 [T(0, "n1", 0, 0, (4,)), T(1, "n1", 0, 1, (5,)), T(2, "n1", 0, 2, (4,))],
                 id="fewer-gpus-than-tasks-share-in-turn"),
    pytest.param(2, ["n1"], (), None, None,
                 [T(0, "n1", 0, 0, ()), T(1, "n1", 0, 1, ())], id="no-gpus"),
    pytest.param(2, ["n1"], (0, 1, 2, 3), None, 1,
                 [T(0, "n1", 0, 0, (0,)), T(1, "n1", 0, 1, (1,))], id="gpus-per-task"),
    pytest.param(3, ["n1", "n2"], (0, 1), 2, None,
                 [T(0, "n1", 0, 0, (0,)), T(1, "n1", 0, 1, (1,)), T(2, "n2", 1, 0, (0, 1))],
                 id="block-distribution-over-nodes"),
])
def test_place_tasks(ntasks: int, nodes: list[str], gpus: tuple[int, ...],
                     per_node: int | None, per_task: int | None,
                     placed: list[TaskPlacement]) -> None:
    got = place_tasks(ntasks, nodes, {n: gpus for n in nodes}, ntasks_per_node=per_node,
                      gpus_per_task=per_task)
    assert list(got) == placed


@pytest.mark.parametrize(("ntasks", "nodes", "per_node", "per_task", "message"), [
    pytest.param(2, ["n1"], None, 3, "need 6 GPUs on n1, but the job has 4 there",
                 id="more-gpus-than-the-job-has"),
    pytest.param(1, ["n1", "n2"], None, None, "cannot run 1 task(s) on 2 nodes",
                 id="fewer-tasks-than-nodes"),
    pytest.param(5, ["n1", "n2"], 2, None, "5 tasks do not fit 2 node(s) with "
                 "--ntasks-per-node=2", id="over-tasks-per-node"),
    pytest.param(0, ["n1"], None, None, "at least one task", id="no-tasks"),
])
def test_place_tasks_refuses_what_does_not_fit(ntasks: int, nodes: list[str],
                                               per_node: int | None, per_task: int | None,
                                               message: str) -> None:
    with pytest.raises(PlacementError, match=message.replace("(", r"\(").replace(")", r"\)")):
        place_tasks(ntasks, nodes, {n: (0, 1, 2, 3) for n in nodes}, ntasks_per_node=per_node,
                    gpus_per_task=per_task)


def test_split_gpus_keeps_every_gpu_once_when_there_are_enough() -> None:
    for ntasks in range(1, 9):
        shares = split_gpus(tuple(range(8)), ntasks)
        assert [g for share in shares for g in share] == list(range(8))
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_task_environment() -> None:
    step = place_tasks(4, ["n1", "n2"], {"n1": (0, 1), "n2": (0, 1)})
    base = {"SLURM_JOB_ID": "7", "SLURM_STEP_GPUS": "0,1", "KEEP": "1"}
    env = task_environment(base, step, step[3], step_id=2, gpus_per_task=None,
                           cpus_per_task=3)
    assert env == {
        "SLURM_JOB_ID": "7", "KEEP": "1", "SLURM_STEP_ID": "2", "SLURM_STEPID": "2",
        "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
        "SLURMD_NODENAME": "n2", "SLURM_NTASKS": "4", "SLURM_NPROCS": "4",
        "SLURM_STEP_NUM_TASKS": "4", "SLURM_NNODES": "2", "SLURM_STEP_NUM_NODES": "2",
        "SLURM_NODELIST": "n[1-2]", "SLURM_STEP_NODELIST": "n[1-2]",
        "SLURM_TASKS_PER_NODE": "2(x2)", "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
        "CUDA_VISIBLE_DEVICES": "1", "SLURM_STEP_GPUS": "0,1", "SLURM_CPUS_PER_TASK": "3",
    }
    cpu_only = task_environment(base, place_tasks(1, ["n1"], {}), place_tasks(1, ["n1"], {})[0],
                                step_id=0)
    assert cpu_only["CUDA_VISIBLE_DEVICES"] == "" and "SLURM_STEP_GPUS" not in cpu_only
