"""The batch step's environment: SLURM_* variables as real scripts read them."""

from __future__ import annotations

from typing import Any

import pytest

from gefion.executor.env import format_counts, job_environment, slurm_env, tasks_per_node
from gefion.executor.spec import LaunchSpec

START = 1_700_000_000.0


def spec(**fields: Any) -> LaunchSpec:
    base: dict[str, Any] = {"job_id": 42, "name": "train", "user": "alice",
                            "script": "#!/bin/sh\n", "workdir": "/home/alice/w",
                            "node": "dgx001", "stdout_path": "o", "stderr_path": "o"}
    return LaunchSpec(**{**base, **fields})


BASE = {
    "ENVIRONMENT": "BATCH", "SLURM_CLUSTER_NAME": "gefion",
    "SLURM_JOB_ID": "42", "SLURM_JOBID": "42", "SLURM_JOB_NAME": "train",
    "SLURM_JOB_USER": "alice", "SLURM_JOB_UID": "1000", "SLURM_JOB_GID": "100",
    "SLURM_JOB_PARTITION": "", "SLURM_JOB_ACCOUNT": "", "SLURM_JOB_QOS": "normal",
    "SLURM_SUBMIT_DIR": "/home/alice/w", "SLURM_SUBMIT_HOST": "login1",
    "SLURM_JOB_START_TIME": "1700000000",
    "SLURM_NNODES": "1", "SLURM_JOB_NUM_NODES": "1", "SLURM_JOB_NODELIST": "dgx001",
    "SLURM_NODELIST": "dgx001", "SLURMD_NODENAME": "dgx001", "SLURM_NODEID": "0",
    "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "1", "SLURM_NPROCS": "1",
    "SLURM_TASKS_PER_NODE": "1", "SLURM_CPUS_PER_TASK": "1", "SLURM_CPUS_ON_NODE": "1",
    "SLURM_JOB_CPUS_PER_NODE": "1", "SLURM_GPUS_ON_NODE": "0", "CUDA_VISIBLE_DEVICES": "",
    "GEFION_JOB_ID": "42", "GEFION_JOB_NAME": "train", "GEFION_NODE": "dgx001",
    "GEFION_NODELIST": "dgx001", "GEFION_GPUS": "",
}


@pytest.mark.parametrize(("fields", "changes"), [
    pytest.param({}, {}, id="cpu-only-job-hides-all-gpus"),
    pytest.param({"gpus": (0, 1, 2, 3)}, {
        "CUDA_VISIBLE_DEVICES": "0,1,2,3", "SLURM_JOB_GPUS": "0,1,2,3",
        "SLURM_STEP_GPUS": "0,1,2,3", "SLURM_GPUS_ON_NODE": "4", "GEFION_GPUS": "0,1,2,3"},
        id="four-gpus"),
    pytest.param({"node": "dgx003", "nodelist": ("dgx001", "dgx002", "dgx003"), "ntasks": 5}, {
        "SLURM_NNODES": "3", "SLURM_JOB_NUM_NODES": "3", "SLURM_JOB_NODELIST": "dgx[001-003]",
        "SLURM_NODELIST": "dgx[001-003]", "GEFION_NODELIST": "dgx[001-003]",
        "SLURMD_NODENAME": "dgx003", "GEFION_NODE": "dgx003", "SLURM_NODEID": "2",
        "SLURM_NTASKS": "5", "SLURM_NPROCS": "5", "SLURM_TASKS_PER_NODE": "2(x2),1",
        "SLURM_CPUS_ON_NODE": "1", "SLURM_JOB_CPUS_PER_NODE": "2(x2),1"},
        id="third-node-of-three-uneven-tasks"),
    pytest.param({"nodelist": ("dgx001", "dgx002"), "ntasks": 16, "ntasks_per_node": 8,
                  "cpus_per_task": 4, "gpus_per_task": 1}, {
        "SLURM_NNODES": "2", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "dgx[001-002]",
        "SLURM_NODELIST": "dgx[001-002]", "GEFION_NODELIST": "dgx[001-002]",
        "SLURM_NTASKS": "16", "SLURM_NPROCS": "16", "SLURM_TASKS_PER_NODE": "8(x2)",
        "SLURM_NTASKS_PER_NODE": "8", "SLURM_CPUS_PER_TASK": "4", "SLURM_CPUS_ON_NODE": "32",
        "SLURM_JOB_CPUS_PER_NODE": "32(x2)", "SLURM_GPUS_PER_TASK": "1"},
        id="two-nodes-eight-tasks-each"),
    pytest.param({"array_job_id": 40, "array_task_id": 7, "partition": "gpu",
                  "account": "proj", "qos": "high", "submit_dir": "/home/alice"}, {
        "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "7", "SLURM_JOB_PARTITION": "gpu",
        "SLURM_JOB_ACCOUNT": "proj", "SLURM_JOB_QOS": "high", "SLURM_SUBMIT_DIR": "/home/alice"},
        id="array-task-in-a-partition"),
    pytest.param({"time_limit_s": 3600}, {"SLURM_JOB_END_TIME": "1700003600"},
                 id="time-limit-gives-end-time"),
])
def test_slurm_env(fields: dict[str, Any], changes: dict[str, str]) -> None:
    got = slurm_env(spec(**fields), uid=1000, gid=100, submit_host="login1", start_ts=START)
    assert got == {**BASE, **changes}


@pytest.mark.parametrize(("counts", "text"), [
    pytest.param([1], "1", id="one"),
    pytest.param([4, 4], "4(x2)", id="run"),
    pytest.param([2, 2, 1], "2(x2),1", id="run-then-single"),
    pytest.param([1, 2, 2, 3], "1,2(x2),3", id="mixed"),
])
def test_format_counts(counts: list[int], text: str) -> None:
    assert format_counts(counts) == text


@pytest.mark.parametrize(("ntasks", "nnodes", "counts"), [
    pytest.param(1, 1, [1], id="one"),
    pytest.param(5, 2, [3, 2], id="first-node-takes-the-extra"),
    pytest.param(8, 4, [2, 2, 2, 2], id="even"),
])
def test_tasks_per_node(ntasks: int, nnodes: int, counts: list[int]) -> None:
    assert tasks_per_node(ntasks, nnodes) == counts


def test_job_environment_layers_in_order() -> None:
    s = spec(env={"PATH": "/opt/bin:/usr/bin", "HOME": "/root", "SLURM_JOB_ID": "1", "KEEP": "x"},
             extra_env={"GEFION_TOKEN": "t", "SLURM_JOB_NAME": "renamed"})
    env = job_environment(s, user="alice", uid=1000, gid=100, home="/home/alice",
                          shim_dir="/run/gefion/bin", job_dir="/run/gefion/42",
                          submit_host="login1", start_ts=START)
    assert env["KEEP"] == "x"  # the submitted environment is the base
    assert env["SLURM_JOB_ID"] == "42"  # Slurm's variables win over the submitted ones
    assert (env["HOME"], env["USER"], env["LOGNAME"]) == ("/home/alice", "alice", "alice")
    assert env["PATH"] == "/run/gefion/bin:/opt/bin:/usr/bin"
    assert env["GEFION_JOB_DIR"] == "/run/gefion/42"
    assert (env["GEFION_TOKEN"], env["SLURM_JOB_NAME"]) == ("t", "renamed")  # extra_env last


def test_job_environment_without_path_gets_a_default() -> None:
    env = job_environment(spec(env={}), user="alice", uid=1000, gid=100, home="/h",
                          shim_dir="/s", job_dir="/j", submit_host="h", start_ts=START)
    assert env["PATH"].startswith("/s:/usr/local/sbin:") and env["PATH"].endswith(":/bin")
