"""Usage accounting of the live controller, derived from the event log alone.

Each run of a job — from its ``job.started`` to the event that ends it (``job.finished``,
``job.cancelled``, ``job.preempted`` or ``job.node_fail``) — is charged with the core's one
rule, :func:`gefion.core.grants.charge_gpu_s`: GPUs × seconds × the usage factor of the
QOS it ran in, pro rata (docs/fairshare.md). The same charge feeds

* the fair-share :class:`~gefion.core.usage.UsageLedger` (decayed, continuous accrual over
  the run), and
* the cumulative GPU-seconds per project that the core spends against grants
  (:func:`gefion.core.grants.grant_balances`, through the snapshot builder).

Running jobs count up to ``now`` in both, as in the twin (:mod:`gefion.twin.metering`): a
project cannot start a thousand jobs on its last hour. Nothing is kept in a counter that
the log does not say: :class:`Accounting` is a fold of events, rebuilt from the log at
start and fed the same events live, so a restart changes nothing.

The QOS a run is charged at is the one its ``job.started`` names (``payload.qos``: the
fallback QOS of a project out of grant hours, see :mod:`gefion.controller.tenancy`), else
the job's own; its usage factor is the one in force at the start (the core's defaults,
then ``qos.created`` events in log order). Times are the events' ``ts`` (seconds); a run
whose end is stamped before its start (clocks disagreeing) costs nothing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from gefion.core.grants import Charge, burn_rate, charge_gpu_s
from gefion.core.tenancy import DEFAULT_QOS
from gefion.core.usage import DEFAULT_HALF_LIFE_S, UsageLedger
from gefion.store import EventKind, EventRow

#: Events that end a run (what follows them — a requeue, a cancel — starts none).
RUN_ENDS = frozenset({EventKind.JOB_FINISHED, EventKind.JOB_CANCELLED,
                      EventKind.JOB_PREEMPTED, EventKind.JOB_NODE_FAIL})
#: Events after which a job never runs again.
_JOB_ENDS = frozenset({EventKind.JOB_FINISHED, EventKind.JOB_CANCELLED})
#: The window of the burn rate behind the grant forecast: the last 24 hours.
BURN_WINDOW_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Run:
    """A run in progress: ``gpu_s_per_s`` is GPUs × the usage factor of ``qos``."""

    job_id: int
    project: str
    user: str
    qos: str
    gpus: int
    start_ts: float
    gpu_s_per_s: float

    def used_gpu_s(self, until_ts: float) -> float:
        return self.gpu_s_per_s * max(0.0, until_ts - self.start_ts)


class Accounting:
    """The fold of job events into usage (see the module). Not thread-safe: the scheduler
    owns it, under its lock."""

    def __init__(self, *, half_life_s: float = DEFAULT_HALF_LIFE_S,
                 burn_window_s: float = BURN_WINDOW_S) -> None:
        self.ledger = UsageLedger(half_life_s)  # ended runs; running ones are added on read
        self.burn_window_s = burn_window_s
        self.runs: dict[int, Run] = {}
        #: the first event's time: the site's start, for burn rates younger than a window
        self.origin_ts: float | None = None
        self._factors = {name: q.usage_factor for name, q in DEFAULT_QOS.items()}
        self._owners: dict[int, tuple[str, str, str]] = {}  # jobs not ended: project, user, qos
        self._done: dict[str, float] = {}  # GPU-seconds of ended runs, per project
        #: ended runs that may overlap the burn window: (project, start, end, GPU-seconds)
        self._recent: deque[tuple[str, float, float, float]] = deque()

    # -- the fold ---------------------------------------------------------------------------
    def observe(self, event: EventRow) -> None:
        """Fold one event (any kind; those about no job's usage are ignored but for QOS)."""
        if self.origin_ts is None:
            self.origin_ts = event.ts
        kind, p, job_id = event.kind, event.payload, event.job_id
        if kind == EventKind.QOS_CREATED:
            factor = p.get("usage_factor", 1.0)
            if isinstance(factor, int | float) and math.isfinite(factor) and factor >= 0:
                self._factors[str(p.get("name"))] = float(factor)
            return
        if job_id is None:
            return
        if kind == EventKind.JOB_SUBMITTED:
            self._owners[job_id] = (str(p.get("project")), str(p.get("user")),
                                    str(p.get("qos")))
        elif kind == EventKind.JOB_STARTED:
            self._start(job_id, event)
        elif kind in RUN_ENDS:
            self._close(job_id, event.ts)
        if kind in _JOB_ENDS:
            self._owners.pop(job_id, None)

    def _start(self, job_id: int, event: EventRow) -> None:
        owner = self._owners.get(job_id)
        if owner is None:  # a log that starts mid-way: nothing to charge it to
            return
        project, user, qos = owner
        qos = str(event.payload.get("qos") or qos)
        allocation = event.payload.get("allocation") or {}
        gpus = sum(len(g) for g in allocation.values()) if isinstance(allocation, Mapping) \
            else 0
        factor = self.usage_factor(qos)
        self.runs[job_id] = Run(job_id, project, user, qos, gpus, event.ts,
                                charge_gpu_s(gpus, 1.0, factor))

    def _close(self, job_id: int, end_ts: float) -> None:
        run = self.runs.pop(job_id, None)
        if run is None:
            return
        end = max(end_ts, run.start_ts)
        gpu_s = run.used_gpu_s(end)
        if gpu_s <= 0:
            return
        self._done[run.project] = self._done.get(run.project, 0.0) + gpu_s
        self.ledger = self.ledger.charge(run.project, run.user, gpu_s, run.start_ts, end)
        self._recent.append((run.project, run.start_ts, end, gpu_s))
        self._forget_before(end - self.burn_window_s)

    def _forget_before(self, cutoff_ts: float) -> None:
        # Runs end roughly in log order: the oldest ends are on the left.
        recent = self._recent
        while recent and recent[0][2] <= cutoff_ts:
            recent.popleft()

    def usage_factor(self, qos: str) -> float:
        """The usage factor of ``qos`` now (an unknown QOS is charged as ``normal``)."""
        factor = self._factors.get(qos)
        return factor if factor is not None else self._factors.get("normal", 1.0)

    # -- what it says -----------------------------------------------------------------------
    def charged_gpu_s(self, now: float) -> dict[str, float]:
        """GPU-seconds charged per project by ``now``, running jobs included: what the
        core spends against grants (cumulative: use beyond a grant is charged to the next,
        as Slurm's GrpTRESMins counts all use)."""
        out = dict(self._done)
        for run in self.runs.values():
            out[run.project] = out.get(run.project, 0.0) + run.used_gpu_s(now)
        return out

    def ledger_at(self, now: float) -> UsageLedger:
        """The usage ledger with running jobs charged up to ``now`` (or the ledger's own
        time, if a run's end was stamped later than ``now``)."""
        at = max(now, self.ledger.as_of_s)
        running = [(r.project, r.user, r.used_gpu_s(at), min(r.start_ts, at), at)
                   for r in self.runs.values()]
        return self.ledger.charge_many(c for c in running if c[2] > 0).decayed_to(at)

    def burn_window(self, now: float) -> float:
        """The burn rate's window at ``now``: the last :attr:`burn_window_s`, or the time
        since the site started if that is shorter (at least one second)."""
        since = now - (self.origin_ts if self.origin_ts is not None else now)
        return max(1.0, min(self.burn_window_s, since))

    def burn_rate(self, project: str, now: float) -> float:
        """``project``'s mean burn over :meth:`burn_window` before ``now``, in GPU-seconds
        per second (= GPUs busy × usage factor), running jobs included."""
        window = self.burn_window(now)
        since = now - window
        self._forget_before(now - self.burn_window_s)
        charges: list[Charge] = []
        for name, start, end, gpu_s in self._recent:
            part = _overlap(start, end, since, now)
            if name == project and part > 0:
                charges.append((min(end, now), gpu_s * part / max(end - start, 1e-12)))
        for run in self.runs.values():
            part = _overlap(run.start_ts, now, since, now)
            if run.project == project and part > 0:
                charges.append((now, run.gpu_s_per_s * part))
        return burn_rate(charges, now, window)


def _overlap(start: float, end: float, lo: float, hi: float) -> float:
    """Seconds of ``[start, end]`` within ``(lo, hi]``."""
    return max(0.0, min(end, hi) - max(start, lo))
