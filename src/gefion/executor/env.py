"""The environment a batch script starts with: ``SLURM_*`` (what real scripts read), ``GEFION_*``
and ``CUDA_VISIBLE_DEVICES``. Pure functions of the launch spec; the executor adds the user's
HOME/USER/LOGNAME and the ``srun``/``scontrol`` shims on PATH (:func:`job_environment`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gefion.formats.hostlist import compress

if TYPE_CHECKING:  # srun imports this module: keep it free of the controller's imports
    from gefion.executor.spec import LaunchSpec

CLUSTER_NAME = "gefion"
#: PATH for a job whose environment has none (``--export=NONE``).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def tasks_per_node(ntasks: int, nnodes: int) -> list[int]:
    """How many of ``ntasks`` tasks each of ``nnodes`` nodes runs, in node order.

    Slurm's block distribution: as even as possible, the first nodes taking one more when the
    split is uneven (5 over 2 → ``[3, 2]``). ``--ntasks-per-node`` is a maximum on top of this,
    checked where tasks are placed (:func:`gefion.executor.placement.place_tasks`).
    """
    base, extra = divmod(ntasks, nnodes)
    return [base + (1 if i < extra else 0) for i in range(nnodes)]


def format_counts(counts: Sequence[int]) -> str:
    """Slurm's run-length form of per-node counts: ``[2, 2, 1]`` → ``2(x2),1``."""
    runs: list[str] = []
    i = 0
    while i < len(counts):
        j = i
        while j < len(counts) and counts[j] == counts[i]:
            j += 1
        runs.append(str(counts[i]) if j - i == 1 else f"{counts[i]}(x{j - i})")
        i = j
    return ",".join(runs)


def slurm_env(spec: LaunchSpec, *, uid: int, gid: int, submit_host: str,
              start_ts: float) -> dict[str, str]:
    """The ``SLURM_*``, ``GEFION_*`` and GPU variables of the batch step of ``spec``.

    Variables Slurm sets only when asked for (array ids, ``--ntasks-per-node``,
    ``--gpus-per-task``, GPU lists of a job with GPUs, the end time of a job with a time limit)
    are set only then. ``CUDA_VISIBLE_DEVICES`` is always set: ``""`` hides every GPU from a
    job that has none.
    """
    nodelist = compress(spec.nodelist)
    nnodes = len(spec.nodelist)
    node_id = spec.nodelist.index(spec.node)
    counts = tasks_per_node(spec.ntasks, nnodes)
    gpus = ",".join(map(str, spec.gpus))
    env = {
        "ENVIRONMENT": "BATCH",
        "SLURM_CLUSTER_NAME": CLUSTER_NAME,
        "SLURM_JOB_ID": str(spec.job_id),
        "SLURM_JOBID": str(spec.job_id),
        "SLURM_JOB_NAME": spec.name,
        "SLURM_JOB_USER": spec.user,
        "SLURM_JOB_UID": str(uid),
        "SLURM_JOB_GID": str(gid),
        "SLURM_JOB_PARTITION": spec.partition,
        "SLURM_JOB_ACCOUNT": spec.account,
        "SLURM_JOB_QOS": spec.qos,
        "SLURM_SUBMIT_DIR": spec.submit_dir,
        "SLURM_SUBMIT_HOST": submit_host,
        "SLURM_JOB_START_TIME": str(int(start_ts)),
        "SLURM_NNODES": str(nnodes),
        "SLURM_JOB_NUM_NODES": str(nnodes),
        "SLURM_JOB_NODELIST": nodelist,
        "SLURM_NODELIST": nodelist,
        "SLURMD_NODENAME": spec.node,
        "SLURM_NODEID": str(node_id),
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NTASKS": str(spec.ntasks),
        "SLURM_NPROCS": str(spec.ntasks),
        "SLURM_TASKS_PER_NODE": format_counts(counts),
        "SLURM_CPUS_PER_TASK": str(spec.cpus_per_task),
        "SLURM_CPUS_ON_NODE": str(counts[node_id] * spec.cpus_per_task),
        "SLURM_JOB_CPUS_PER_NODE": format_counts([c * spec.cpus_per_task for c in counts]),
        "SLURM_GPUS_ON_NODE": str(len(spec.gpus)),
        "CUDA_VISIBLE_DEVICES": gpus,
        "GEFION_JOB_ID": str(spec.job_id),
        "GEFION_JOB_NAME": spec.name,
        "GEFION_NODE": spec.node,
        "GEFION_NODELIST": nodelist,
        "GEFION_GPUS": gpus,
    }
    if spec.gpus:
        env["SLURM_JOB_GPUS"] = gpus
        env["SLURM_STEP_GPUS"] = gpus
    if spec.time_limit_s is not None:
        env["SLURM_JOB_END_TIME"] = str(int(start_ts) + spec.time_limit_s)
    if spec.ntasks_per_node is not None:
        env["SLURM_NTASKS_PER_NODE"] = str(spec.ntasks_per_node)
    if spec.gpus_per_task is not None:
        env["SLURM_GPUS_PER_TASK"] = str(spec.gpus_per_task)
    if spec.array_job_id is not None and spec.array_task_id is not None:
        env["SLURM_ARRAY_JOB_ID"] = str(spec.array_job_id)
        env["SLURM_ARRAY_TASK_ID"] = str(spec.array_task_id)
    return env


def job_environment(spec: LaunchSpec, *, user: str, uid: int, gid: int, home: str,
                    shim_dir: str, job_dir: str, submit_host: str,
                    start_ts: float) -> dict[str, str]:
    """The whole environment of the batch script, in the order later layers win.

    ``spec.env`` → :func:`slurm_env` → the user's HOME/USER/LOGNAME (always from the account
    the job runs as, never the controller's) → PATH with ``shim_dir`` first (so ``srun`` and
    ``scontrol`` are Gefion's) → ``GEFION_JOB_DIR`` → ``spec.extra_env``.
    """
    env = dict(spec.env)
    env.update(slurm_env(spec, uid=uid, gid=gid, submit_host=submit_host, start_ts=start_ts))
    env.update(HOME=home, USER=user, LOGNAME=user)
    env["PATH"] = f"{shim_dir}:{env.get('PATH') or DEFAULT_PATH}"
    env["GEFION_JOB_DIR"] = job_dir
    env.update(spec.extra_env)
    return env
