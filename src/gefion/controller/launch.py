"""A started job's launch: its stored submission turned into a LaunchSpec (the batch step on
the first node of its allocation, with the GPUs of every node for a multi-node executor)."""

from __future__ import annotations

import os
from typing import Any

from gefion.executor import LaunchSpec
from gefion.slurm.patterns import expand_pattern
from gefion.store import JobRow


def output_paths(row: JobRow, node: str = "") -> tuple[str, str]:
    """The job's stdout and stderr files (absolute), from its ``--output``/``--error``
    patterns, relative to its working directory as in Slurm."""
    spec = row.spec
    workdir = str(spec.get("workdir") or "/")
    fields: dict[str, Any] = {"job_id": row.id, "name": row.name, "user": row.user,
                              "array_job_id": row.array_job_id,
                              "array_task_id": row.array_task_id, "node": node}
    out = expand_pattern(str(spec.get("output") or "slurm-%j.out"), **fields)
    err = expand_pattern(str(spec.get("error") or spec.get("output") or "slurm-%j.out"),
                         **fields)
    return os.path.join(workdir, out), os.path.join(workdir, err)


def launch_spec(row: JobRow, *, kill_grace_s: int, private_output: bool = False) -> LaunchSpec:
    """What the executor runs for ``row``, started on its allocation's first node.
    ``private_output``: a sensitive project's job — output files only its user reads."""
    spec = row.spec
    nodes = tuple(node for node, _ in row.allocation)
    node = nodes[0]
    stdout, stderr = output_paths(row, node)
    signal = spec.get("signal")
    # sbatch without -n: one task per node, or --ntasks-per-node on each
    ntasks = spec.get("ntasks") or max(len(nodes), 1) * int(spec.get("ntasks_per_node") or 1)
    return LaunchSpec(
        job_id=row.id, name=row.name, user=row.user, script=str(spec["script"]),
        argv=tuple(spec.get("script_args") or ()), workdir=str(spec.get("workdir") or "/"),
        env=dict(spec.get("env") or {}), node=node, nodelist=nodes,
        gpus=tuple(dict(row.allocation)[node]),
        node_gpus={name: tuple(gpus) for name, gpus in row.allocation},
        time_limit_s=int(spec["time_limit_s"]),
        kill_grace_s=kill_grace_s, stdout_path=stdout, stderr_path=stderr,
        open_mode=spec.get("open_mode") or "truncate",
        array_job_id=row.array_job_id, array_task_id=row.array_task_id,
        submit_dir=str(spec.get("submit_dir") or spec.get("workdir") or "/"),
        partition=str(spec.get("partition") or ""), account=row.project, qos=row.qos,
        ntasks=int(ntasks), ntasks_per_node=spec.get("ntasks_per_node"),
        cpus_per_task=int(spec.get("cpus_per_task") or 1),
        gpus_per_task=spec.get("gpus_per_task"),
        signal=None if signal is None else (int(signal[0]), int(signal[1])),
        extra_env={"GEFION_JOB_ID": str(row.id), "GEFION_PROJECT": row.project},
        private_output=private_output)
