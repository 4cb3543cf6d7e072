"""Small builders for core tests: jobs and snapshots in one line each."""

from __future__ import annotations

from typing import Any

from gefion.core.cycle import run_cycle
from gefion.core.decisions import CycleResult
from gefion.core.invariants import assert_invariants
from gefion.core.jobs import Job, JobSpec, JobState
from gefion.core.policies import get_policy
from gefion.core.snapshot import Snapshot, build_snapshot
from gefion.core.topology import Cluster


def pending(job_id: str, gpus: int, limit: int = 3600, *, submit: float = 0.0,
            project: str = "p", held: bool = False, service: float = 0.0,
            **spec: Any) -> Job:
    return Job(job_id, JobSpec(gpus, limit, project, **spec), submit, held=held,
               service_gpu_s=service)


def running(job_id: str, placement: dict[str, int], limit: int = 3600, *, start: float = 0.0,
            project: str = "p", service: float = 0.0, **spec: Any) -> Job:
    gpus = sum(placement.values())
    per_node = set(placement.values())
    extra: dict[str, Any] = {}
    if len(placement) > 1:
        extra = {"nodes": len(placement), "gpus_per_node": per_node.pop()}
    alloc = tuple((node, tuple(range(g))) for node, g in placement.items())
    return Job(job_id, JobSpec(gpus, limit, project, **extra, **spec), start,
               JobState.RUNNING, start, allocation=alloc, service_gpu_s=service)


def finished(job_id: str, state: JobState, exit_code: int | None = 0) -> Job:
    return Job(job_id, JobSpec(1, 60, "p"), 0.0, state, 0.0, 1.0, exit_code=exit_code)


def cycle(cluster: Cluster, jobs: list[Job], now: float = 0.0, policy: str = "gefion",
          **kw: Any) -> tuple[Snapshot, CycleResult]:
    params = kw.pop("params", {})
    snap = build_snapshot(cluster, jobs, now, **kw)
    result = run_cycle(snap, now, get_policy(policy, **params))
    assert_invariants(snap, result)
    return snap, result


def reasons(result: CycleResult) -> dict[str, str]:
    return {v.job_id: v.reason.value for v in result.pending}


def started(result: CycleResult) -> dict[str, dict[str, int]]:
    return {s.job_id: s.placement.as_dict() for s in result.starts}
