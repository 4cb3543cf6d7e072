"""Accounting reads: the runs of jobs in a time window, and usage totals per project.

A job runs once, or several times when it is requeued; a **run** is a ``job.started``
event (its allocation) up to the event that ended it (``job.finished``, ``job.cancelled``,
``job.preempted`` or ``job.node_fail``), whose payload may carry the run's measured
``energy_j``. Runs are read from the log, not kept in a table of their own: the jobs
projection narrows the search to the jobs that may have run in the window (submitted before
its end, and not ended before its start), and their run events are read by job id.

Units: seconds since the epoch, GPU-seconds, joules.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from gefion.store.records import EventRow
from gefion.store.schema import event_from_db, events, jobs

#: The events that end a run.
RUN_ENDS = frozenset({"job.finished", "job.cancelled", "job.preempted", "job.node_fail"})
_RUN_KINDS = ("job.started", *sorted(RUN_ENDS))
_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a job: ``gpus`` held from ``start_ts`` to ``end_ts`` (None: running), in
    ``qos``; ``energy_j`` measured by the telemetry sampler (None: not measured, or
    running)."""

    job_id: int
    user: str
    project: str
    qos: str
    gpus: int
    start_ts: float
    end_ts: float | None
    energy_j: float | None = None


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Ended runs of one (project, QOS): raw GPU-seconds and measured joules."""

    project: str
    qos: str
    gpu_s: float
    energy_j: float


def runs_of(owners: dict[int, tuple[str, str, str]], log: Iterable[EventRow]) -> list[Run]:
    """The runs the events say (in ``seq`` order), for jobs of ``owners`` (job id →
    user, project, QOS). A run's QOS is the one its ``job.started`` names, if any (a
    project out of grant hours runs in the fallback QOS), else the job's. A pure function
    of its arguments."""
    open_runs: dict[int, tuple[float, int, str]] = {}
    out: list[Run] = []
    for event in log:
        job_id = event.job_id
        if job_id is None or job_id not in owners:
            continue
        if event.kind == "job.started":
            allocation = event.payload.get("allocation") or {}
            qos = event.payload.get("qos") or owners[job_id][2]
            open_runs[job_id] = (event.ts, sum(len(g) for g in allocation.values()), str(qos))
        elif event.kind in RUN_ENDS and job_id in open_runs:
            start, gpus, qos = open_runs.pop(job_id)
            energy = event.payload.get("energy_j")
            user, project, _ = owners[job_id]
            out.append(Run(job_id, user, project, qos, gpus, start, event.ts,
                           None if energy is None else float(energy)))
    for job_id, (start, gpus, qos) in open_runs.items():
        user, project, _ = owners[job_id]
        out.append(Run(job_id, user, project, qos, gpus, start, None))
    return out


def read_runs(conn: sa.Connection, *, since_ts: float, until_ts: float,
              projects: Collection[str] | None = None) -> list[Run]:
    """Runs that overlap ``[since_ts, until_ts)`` (a running one overlaps until now), of
    ``projects`` only if given, by job id then start."""
    query = sa.select(jobs.c.id, jobs.c.user, jobs.c.project, jobs.c.qos).where(
        jobs.c.submit_ts < until_ts,
        sa.or_(jobs.c.end_ts.is_(None), jobs.c.end_ts >= since_ts))
    if projects is not None:
        query = query.where(jobs.c.project.in_(sorted(projects)))
    owners = {int(i): (u, p, q) for i, u, p, q in conn.execute(query)}
    ids = sorted(owners)
    runs: list[Run] = []
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        rows = conn.execute(sa.select(events).where(events.c.job_id.in_(chunk),
                                                     events.c.kind.in_(_RUN_KINDS))
                            .order_by(events.c.seq))
        runs.extend(runs_of(owners, (event_from_db(r) for r in rows)))
    return sorted((r for r in runs if r.start_ts < until_ts
                   and (r.end_ts is None or r.end_ts > since_ts)),
                  key=lambda r: (r.job_id, r.start_ts))


def usage_totals(conn: sa.Connection) -> list[UsageTotal]:
    """Raw GPU-seconds and measured joules of all ended runs, per (project, QOS)."""
    rows = conn.execute(sa.select(jobs.c.project, jobs.c.qos, sa.func.sum(jobs.c.gpu_s),
                                  sa.func.sum(jobs.c.energy_j))
                        .group_by(jobs.c.project, jobs.c.qos)
                        .order_by(jobs.c.project, jobs.c.qos))
    return [UsageTotal(p, q, float(g or 0.0), float(e or 0.0)) for p, q, g, e in rows]
