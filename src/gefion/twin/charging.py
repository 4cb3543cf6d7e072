"""What running and ended jobs charge to the twin's fair-share usage ledger.

Slurm charges running jobs every ``PriorityCalcPeriod``, so fair share sees long runs as
they go, not only when they end. The twin does the same, and cheaply: jobs that were already
running at the last charge all accrue from that moment, so they are kept as one rate
(GPUs × QOS usage factor) per (project, user) and charged in one line each; only jobs
started since then, and runs that ended, are charged one by one. Charges to a
:class:`~gefion.core.usage.UsageLedger` commute, so they wait for the next recomputation of
the factors and go in with one :meth:`~gefion.core.usage.UsageLedger.charge_many`.

Units: seconds, GPU-seconds (× usage factor).
"""

from __future__ import annotations

import math

from gefion.core.usage import UsageLedger

Charge = tuple[str, str, float, float, float]  # project, user, GPU-s, from, to


class UsageCharger:
    """The usage of running jobs not yet in the ledger, and of runs that ended."""

    def __init__(self) -> None:
        self.charged_at = -math.inf  # the last :meth:`charge_into`
        #: jobs charged at ``charged_at`` and still running: summed rate and count per pair
        self._rate: dict[tuple[str, str], float] = {}
        self._count: dict[tuple[str, str], int] = {}
        #: jobs started since ``charged_at``: job id -> (project, user, rate, start)
        self._fresh: dict[str, tuple[str, str, float, float]] = {}
        self._ended: list[Charge] = []

    def started(self, job_id: str, project: str, user: str, rate: float, now: float) -> None:
        """A run of ``rate`` GPUs × usage factor began at ``now`` (no-op for a rate of 0)."""
        if rate > 0:
            self._fresh[job_id] = (project, user, rate, now)

    def stopped(self, job_id: str, project: str, user: str, rate: float, now: float) -> None:
        """The run of ``job_id`` (as given to :meth:`started`) ended at ``now``."""
        if rate <= 0:
            return
        fresh = self._fresh.pop(job_id, None)
        if fresh is not None:
            since = fresh[3]
        else:
            since = self.charged_at
            key = (project, user)
            left = self._count[key] - 1
            if left:
                self._count[key] = left
                self._rate[key] = max(0.0, self._rate[key] - rate)
            else:
                del self._count[key], self._rate[key]
        if now > since:
            self._ended.append((project, user, rate * (now - since), since, now))

    def charge_into(self, ledger: UsageLedger, now: float) -> UsageLedger:
        """``ledger`` with every charge up to ``now``: ended runs, and running jobs since
        their start or the last charge. One charge per (project, user, interval start)."""
        charges = self._ended
        self._ended = []
        prev = self.charged_at
        if now > prev:
            charges.extend((p, u, rate * (now - prev), prev, now)
                           for (p, u), rate in self._rate.items())
        due: dict[tuple[str, str, float], float] = {}
        for project, user, rate, since in self._fresh.values():
            key = (project, user)
            self._rate[key] = self._rate.get(key, 0.0) + rate
            self._count[key] = self._count.get(key, 0) + 1
            if now > since:
                at = (project, user, since)
                due[at] = due.get(at, 0.0) + rate * (now - since)
        charges.extend((p, u, gpu_s, since, now) for (p, u, since), gpu_s in due.items())
        self._fresh.clear()
        self.charged_at = now
        return ledger.charge_many(charges)
