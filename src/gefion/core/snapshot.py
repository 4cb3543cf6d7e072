"""The snapshot a cycle reads, and the one builder both bodies use to make it.

A snapshot is the state of the world at the start of a cycle: the cluster (with node
states), running jobs with their allocations and *expected* ends (start + time limit — never
the true runtime), pending jobs, reservations, tenancy, the decayed usage ledger and grant
balances. :func:`build_snapshot` is the only way the controller and the twin make one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gefion.core.errors import GefionError
from gefion.core.grants import grant_balances
from gefion.core.jobs import Job, JobSpec, JobState, Shape
from gefion.core.reservations import Reservation
from gefion.core.tenancy import DEFAULT_QOS, QOS, Grant, Project
from gefion.core.topology import Cluster
from gefion.core.usage import FairShare, UsageLedger, fairshare


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A running job as the scheduler sees it. ``alloc``: (node index, GPUs) pairs."""

    id: str
    spec: JobSpec
    start_s: float
    expected_end_s: float
    alloc: tuple[tuple[int, int], ...]
    preemptible: bool
    grace_s: int
    requeue: bool
    service_gpu_s: float  # attained service before this run

    @property
    def gpus(self) -> int:
        return sum(g for _, g in self.alloc)


@dataclass(frozen=True, slots=True)
class PendingJob:
    """A pending job. ``shape`` is None when the request cannot be laid out on this cluster
    (``shape_error`` says why)."""

    id: str
    spec: JobSpec
    submit_s: float
    shape: Shape | None
    held: bool = False
    service_gpu_s: float = 0.0
    shape_error: str = ""


@dataclass(frozen=True)
class Snapshot:
    cluster: Cluster
    running: tuple[RunningJob, ...] = ()
    pending: tuple[PendingJob, ...] = ()
    reservations: tuple[Reservation, ...] = ()
    projects: Mapping[str, Project] = field(default_factory=dict)
    qos: Mapping[str, QOS] = field(default_factory=lambda: dict(DEFAULT_QOS))
    fairshare: FairShare = field(default_factory=lambda: FairShare({}, {}))
    #: remaining GPU-seconds of active grants per metered project
    grant_left_gpu_s: Mapping[str, float] = field(default_factory=dict)
    #: state of every job a dependency may name (terminal ones with their exit codes)
    job_states: Mapping[str, JobState] = field(default_factory=dict)
    exit_codes: Mapping[str, int | None] = field(default_factory=dict)
    as_of_s: float = 0.0

    def qos_of(self, name: str) -> QOS:
        q = self.qos.get(name)
        return q if q is not None else self.qos.get("normal", DEFAULT_QOS["normal"])


def resolve_shape(spec: JobSpec, cluster: Cluster) -> tuple[Shape | None, str]:
    try:
        shape = spec.shape(cluster.max_gpus_per_node)
    except GefionError as e:
        return None, str(e)
    if shape.nodes > len(cluster.nodes):
        return None, f"needs {shape.nodes} nodes, the cluster has {len(cluster.nodes)}"
    return shape, ""


def build_snapshot(
    cluster: Cluster,
    jobs: Iterable[Job],
    now: float,
    *,
    reservations: Iterable[Reservation] = (),
    projects: Mapping[str, Project] | None = None,
    qos: Mapping[str, QOS] | None = None,
    ledger: UsageLedger | None = None,
    grants: Iterable[Grant] = (),
    charged_gpu_s: Mapping[str, float] | None = None,
    fairshare_table: FairShare | None = None,
    previous: Snapshot | None = None,
) -> Snapshot:
    """Build the snapshot for a cycle at ``now`` from job records and tenancy.

    ``charged_gpu_s`` is, per project, the GPU-seconds (× usage factor) already charged
    against its grants; it is spent from the earliest-expiring active grant first.

    ``fairshare_table`` lets a body reuse fair-share factors it computed earlier from the same
    ledger (like Slurm, bodies recompute them every ``PriorityCalcPeriod``, not every cycle).

    ``previous``, the snapshot of the body's last cycle, lets the builder reuse what it
    derived from job records that did not change: ``Job`` records are immutable, so a body
    that replaces a record on every change passes the very same object for an unchanged
    job, and the builder keys its reuse on that identity (on the same cluster and QOS).
    """
    qos_map = dict(qos) if qos is not None else dict(DEFAULT_QOS)
    projects = dict(projects or {})
    running: list[RunningJob] = []
    pending: list[PendingJob] = []
    states: dict[str, JobState] = {}
    exit_codes: dict[str, int | None] = {}
    reuse: dict[str, tuple[Job, RunningJob | PendingJob, Any]] = {}
    if previous is not None and previous.cluster is cluster and previous.qos == qos_map:
        reuse = previous.__dict__.get("_derived", {})
    derived: dict[str, tuple[Job, RunningJob | PendingJob, Any]] = {}
    from gefion.core.columns import pending_row  # columns.py imports this module

    for job in jobs:
        states[job.id] = job.state
        exit_codes[job.id] = job.exit_code
        hit = reuse.get(job.id)
        if hit is not None and hit[0] is job:
            record = hit[1]
            derived[job.id] = hit
            if isinstance(record, RunningJob):
                running.append(record)
            else:
                pending.append(record)
            continue
        if job.state is JobState.RUNNING:
            q = qos_map.get(job.spec.qos) or qos_map.get("normal") or DEFAULT_QOS["normal"]
            preemptible = q.preemptible if job.spec.preemptible is None else job.spec.preemptible
            alloc = tuple(sorted((cluster.index_of(n), len(g)) for n, g in job.allocation))
            start = job.start_s if job.start_s is not None else job.submit_s
            run = RunningJob(
                job.id, job.spec, start, start + job.spec.time_limit_s, alloc, preemptible,
                job.spec.grace_s if job.spec.grace_s is not None else q.grace_s,
                q.requeues if job.spec.preemptible is None else preemptible,
                job.service_gpu_s)
            running.append(run)
            derived[job.id] = (job, run, None)
        elif job.state is JobState.PENDING:
            shape, err = resolve_shape(job.spec, cluster)
            wait = PendingJob(job.id, job.spec, job.submit_s, shape, job.held,
                              job.service_gpu_s, err)
            pending.append(wait)
            derived[job.id] = (job, wait, pending_row(wait))
    running.sort(key=lambda r: (r.start_s, r.id))
    pending.sort(key=lambda p: (p.submit_s, p.id))
    ledger = ledger or UsageLedger()
    snapshot = Snapshot(
        cluster=cluster,
        running=tuple(running),
        pending=tuple(pending),
        reservations=tuple(reservations),
        projects=projects,
        qos=qos_map,
        fairshare=fairshare_table if fairshare_table is not None
        else fairshare(projects, ledger, now),
        grant_left_gpu_s=grant_balances(projects, grants, charged_gpu_s or {}, now),
        job_states=states,
        exit_codes=exit_codes,
        as_of_s=now,
    )
    from gefion.core.columns import pending_columns  # columns.py imports this module

    # Lay out the columns the cycle reads, once per snapshot, from rows kept per job.
    pending_columns(snapshot, [derived[p.id][2] for p in snapshot.pending])
    object.__setattr__(snapshot, "_derived", derived)  # for the next build (``previous``)
    return snapshot
