"""Grant metering in the twin: what each project has used of its grants, as the cycle needs it.

The engine tells the meter of every run's start and stop; before a cycle it asks for the
GPU-seconds charged so far per metered project (:meth:`GrantMeter.charged_gpu_s`) and hands
them, with the grants, to the core's one snapshot builder, which turns them into balances
(:func:`gefion.core.grants.grant_balances`); the core's filter then holds the pending jobs
of a project with nothing left (``PendingReason.GRANT_EXHAUSTED``).

What counts as charged: the ``usage`` a tenancy file gives (charged at time 0), every
finished run's ``gpus × seconds × usage factor``, and what running jobs have used up to
``now`` — a site meters running jobs too, so a project cannot start a thousand jobs on an
hour that is left. A run that started with hours left is never stopped when they run out
(the core holds pending jobs only); what it uses beyond the grants is *unfunded*.

The meter also keeps, per project with grants, the time-stamped charges (at the end of
each run) for the burn-down in the summary (:func:`gefion.core.grants.burn_down`), and the
jobs the core held for GRANT_EXHAUSTED (read from the cycle's verdicts, the core's word).
Units: GPU-seconds, seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from gefion.core.decisions import CycleResult, PendingReason
from gefion.core.tenancy import Grant, Project

#: ``(time_s, gpu_s)``: a run's charge at its end, GPU-seconds × the QOS usage factor.
Charge = tuple[float, float]


class GrantMeter:
    """Grant use of the projects of one twin run (see the module docstring)."""

    def __init__(self, grants: Iterable[Grant], projects: Mapping[str, Project],
                 usage_gpu_s: Mapping[str, float] | None = None) -> None:
        self.grants = tuple(grants)
        self.metered = frozenset(name for name, p in projects.items() if p.metered)
        #: projects whose charges are kept: those with grants, and metered ones
        self.kept = frozenset(g.project for g in self.grants) | self.metered
        usage = usage_gpu_s or {}
        self._done: dict[str, float] = {p: float(usage.get(p, 0.0)) for p in self.kept}
        self.charges: dict[str, list[Charge]] = {
            p: [(0.0, self._done[p])] if self._done[p] > 0 else [] for p in sorted(self.kept)}
        self._running: dict[str, tuple[str, float, float]] = {}  # id → (project, rate, since)
        self.held: dict[str, set[str]] = {}

    @property
    def active(self) -> bool:
        """Does the cycle need balances at all (is any project metered)?"""
        return bool(self.metered)

    def edges(self) -> list[float]:
        """The finite starts and ends of grant validity, sorted: at each, who may run
        changes, so the engine runs a cycle there."""
        times = {t for g in self.grants if g.project in self.metered
                 for t in (g.valid_from_s, g.valid_to_s) if math.isfinite(t)}
        return sorted(times)

    def started(self, job_id: str, project: str, gpu_s_per_s: float, now: float) -> None:
        """A run of ``job_id`` began at ``now``, charging ``gpu_s_per_s`` GPU-seconds per
        second (GPUs × usage factor)."""
        if project in self.kept and gpu_s_per_s > 0:
            self._running[job_id] = (project, gpu_s_per_s, now)

    def stopped(self, job_id: str, now: float) -> None:
        """The run of ``job_id`` ended at ``now``: its use becomes a charge."""
        entry = self._running.pop(job_id, None)
        if entry is None:
            return
        project, rate, since = entry
        gpu_s = rate * (now - since)
        if gpu_s > 0:
            self._done[project] += gpu_s
            self.charges[project].append((now, gpu_s))

    def charged_gpu_s(self, now: float) -> dict[str, float]:
        """GPU-seconds charged per metered project by ``now``, running jobs included."""
        out = {p: self._done[p] for p in self.metered}
        for project, rate, since in self._running.values():
            if project in out:
                out[project] += rate * max(0.0, now - since)
        return out

    def observe(self, result: CycleResult, balances: Mapping[str, float],
                project_of: Callable[[str], str]) -> None:
        """Note the jobs the cycle held for GRANT_EXHAUSTED. ``balances`` are the
        snapshot's; the verdicts are read only while some metered project has nothing
        left."""
        if not any(left <= 0 for left in balances.values()):
            return
        for verdict in result.pending:
            if verdict.reason is PendingReason.GRANT_EXHAUSTED:
                self.held.setdefault(project_of(verdict.job_id), set()).add(verdict.job_id)

    def held_jobs(self) -> dict[str, int]:
        """Per project, how many of its jobs the core held for GRANT_EXHAUSTED at least once."""
        return {p: len(ids) for p, ids in sorted(self.held.items())}

    def charge_log(self) -> dict[str, tuple[Charge, ...]]:
        """Per project with grants or metered, its charges ``(time_s, gpu_s)`` in order."""
        return {p: tuple(c) for p, c in self.charges.items()}
