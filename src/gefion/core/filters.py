"""Phase 1 of the cycle: set aside jobs that cannot run at all right now, with a reason.

Checked in this order (the first that applies is the reason): the request cannot be laid
out on this cluster (UNSATISFIABLE), held (HELD), a dependency (DEPENDENCY, or
DEPENDENCY_NEVER when it can no longer be met), over a QOS limit (QOS_LIMIT), no grant
hours left (GRANT_EXHAUSTED), an unknown reservation (RESERVATION).
Limits that depend on what else starts this cycle (project GPUs, GPUs per user) are checked
during placement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gefion.core.columns import pending_columns
from gefion.core.decisions import PendingReason
from gefion.core.jobs import DependencyKind, JobState
from gefion.core.snapshot import PendingJob, Snapshot

_FAILED = frozenset({JobState.FAILED, JobState.TIMEOUT, JobState.CANCELLED})


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: PendingReason
    detail: str = ""


def _dependency(job: PendingJob, snapshot: Snapshot,
                singleton_owner: dict[tuple[str, str], str]) -> Rejection | None:
    states = snapshot.job_states
    for dep in job.spec.depends_on:
        if dep.kind is DependencyKind.SINGLETON:
            owner = singleton_owner.get((job.spec.name, job.spec.user))
            if owner is not None and owner != job.id:
                return Rejection(PendingReason.DEPENDENCY, f"singleton: waits for {owner}")
            continue
        assert dep.job_id is not None
        state = states.get(dep.job_id)
        if state is None:
            return Rejection(PendingReason.DEPENDENCY_NEVER, f"unknown job {dep.job_id}")
        if not state.terminal:
            return Rejection(PendingReason.DEPENDENCY, f"{dep}")
        ok = snapshot.exit_codes.get(dep.job_id) in (0, None) and state is JobState.COMPLETED
        if dep.kind is DependencyKind.AFTEROK and not ok:
            return Rejection(PendingReason.DEPENDENCY_NEVER, f"{dep}: job ended {state}")
        if dep.kind is DependencyKind.AFTERNOTOK and ok:
            return Rejection(PendingReason.DEPENDENCY_NEVER, f"{dep}: job completed")
    return None


def singleton_owners(snapshot: Snapshot) -> dict[tuple[str, str], str]:
    """Per (name, user) of pending singleton jobs: the job that may run — a running one,
    else the earliest-submitted pending one."""
    pending = snapshot.pending
    waiting = [pending[i] for i in np.flatnonzero(pending_columns(snapshot).deps).tolist()
               if any(d.kind is DependencyKind.SINGLETON for d in pending[i].spec.depends_on)]
    if not waiting:
        return {}
    keys = {(p.spec.name, p.spec.user) for p in waiting}
    owners: dict[tuple[str, str], str] = {}
    for r in snapshot.running:
        key = (r.spec.name, r.spec.user)
        if key in keys:
            owners.setdefault(key, r.id)
    for p in waiting:  # in submit order
        owners.setdefault((p.spec.name, p.spec.user), p.id)
    return owners


def reject(job: PendingJob, snapshot: Snapshot,
           singleton_owner: dict[tuple[str, str], str],
           reservation_names: frozenset[str]) -> Rejection | None:
    """Why ``job`` cannot be considered this cycle, or None if it can."""
    if job.shape is None:
        return Rejection(PendingReason.UNSATISFIABLE, job.shape_error)
    if job.held:
        return Rejection(PendingReason.HELD)
    if job.spec.depends_on:
        dep = _dependency(job, snapshot, singleton_owner)
        if dep is not None:
            return dep
    qos = snapshot.qos_of(job.spec.qos)
    if qos.max_time_limit_s is not None and job.spec.time_limit_s > qos.max_time_limit_s:
        return Rejection(PendingReason.QOS_LIMIT,
                         f"time limit {job.spec.time_limit_s}s over QOS {qos.name} maximum "
                         f"{qos.max_time_limit_s}s")
    if qos.max_gpus_per_user is not None and job.spec.gpus > qos.max_gpus_per_user:
        return Rejection(PendingReason.QOS_LIMIT,
                         f"{job.spec.gpus} GPUs over QOS {qos.name} maximum per user")
    left = snapshot.grant_left_gpu_s.get(job.spec.project)
    if left is not None and left <= 0 and qos.usage_factor > 0:
        return Rejection(PendingReason.GRANT_EXHAUSTED,
                         f"project {job.spec.project} has no active grant with hours left")
    if job.spec.reservation is not None and job.spec.reservation not in reservation_names:
        return Rejection(PendingReason.RESERVATION,
                         f"no reservation named {job.spec.reservation!r}")
    return None
