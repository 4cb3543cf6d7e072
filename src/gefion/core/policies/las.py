"""``las``: Tiresias-style two-dimensional least attained service (Gu et al., NSDI '19).

A job's attained service is GPUs × seconds run (over all its runs). Jobs sit in queues by
attained service (``thresholds_gpu_s``: the upper bounds of all but the last queue); a lower
queue always goes first, first-come first-served within a queue. The policy is preemptive:
a waiting job may evict running jobs of a *higher* queue (more service). Nothing is
reserved (depth 0): any job that fits starts. ``promote_after_s`` moves a job that has
waited that long back to the first queue, against starvation.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gefion.core.columns import pending_columns, running_columns
from gefion.core.errors import PolicyError
from gefion.core.policies.base import lost_work_gpu_s
from gefion.core.priority import PriorityTable, Weights, factor_columns
from gefion.core.snapshot import PendingJob, RunningJob, Snapshot

QUEUE_STEP = 1e12  # queue index dominates the waiting time within a queue


@dataclass(frozen=True)
class Las:
    name: str = "las"
    depth: int | None = 0
    backfill: bool = True
    preemption: bool = True
    requeue_victims: bool = True  # LAS time-slices: an evicted job always comes back
    placement: str = "best-fit"
    thresholds_gpu_s: tuple[float, ...] = field(default=(3_600.0, 57_600.0))
    promote_after_s: float | None = None

    def __post_init__(self) -> None:
        t = tuple(float(x) for x in self.thresholds_gpu_s)
        if any(x <= 0 for x in t) or list(t) != sorted(t):
            raise PolicyError("las: thresholds_gpu_s must be positive and increasing")
        object.__setattr__(self, "thresholds_gpu_s", t)

    def queue_of(self, service_gpu_s: float) -> int:
        return bisect.bisect_right(self.thresholds_gpu_s, service_gpu_s)

    def _pending_queue(self, job: PendingJob, now: float) -> int:
        if self.promote_after_s is not None and now - job.submit_s >= self.promote_after_s:
            return 0
        return self.queue_of(job.service_gpu_s)

    def _running_queue(self, victim: RunningJob, now: float) -> int:
        return self.queue_of(victim.service_gpu_s + victim.gpus * max(0.0, now - victim.start_s))

    @property
    def evicts_preemptible_only(self) -> bool:
        return False  # any job with more attained service is a victim

    @property
    def uses_fairshare(self) -> bool:
        return False  # submission order / attained service

    def priorities(self, snapshot: Snapshot, now: float) -> PriorityTable:
        columns = factor_columns(snapshot, now, Weights())
        cols = pending_columns(snapshot)
        queue = np.searchsorted(self.thresholds_gpu_s, cols.service_gpu_s, side="right")
        submit = columns.pop("submit")
        if self.promote_after_s is not None:
            queue = np.where(now - submit >= self.promote_after_s, 0, queue)
        priority = -queue * QUEUE_STEP + (now - submit)
        return PriorityTable(cols.ids, priority, columns)

    def preemptor_keys(self, jobs: Sequence[PendingJob], snapshot: Snapshot,
                       now: float) -> list[Hashable | None]:
        return [self._pending_queue(j, now) for j in jobs]

    def victim_keys(self, victims: Sequence[RunningJob], snapshot: Snapshot,
                    now: float) -> list[Hashable | None]:
        if victims is snapshot.running:  # the cycle's question: answer it column-wise
            c = running_columns(snapshot)
            service = c.service_gpu_s + c.gpus * np.maximum(0.0, now - c.start_s)
            queues: list[Hashable | None] = np.searchsorted(
                self.thresholds_gpu_s, service, side="right").tolist()
            return queues
        return [self._running_queue(v, now) for v in victims]

    def may_preempt(self, preemptor_key: Hashable, victim_key: Hashable | None) -> bool:
        # Only jobs with more attained service (a later queue) are evicted.
        assert isinstance(preemptor_key, int)
        return isinstance(victim_key, int) and victim_key > preemptor_key

    def victim_cost(self, victim: RunningJob, now: float) -> float:
        return lost_work_gpu_s(victim, now)
