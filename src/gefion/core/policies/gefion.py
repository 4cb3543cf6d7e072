"""``gefion``: the default — multifactor priority, topology-aware placement, backfill with a
reservation depth, and preemption by QOS (a job may evict preemptible jobs of the QOS its
own QOS names in ``preempts``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gefion.core.policies.base import lost_work_gpu_s
from gefion.core.priority import PriorityTable, Weights, multifactor
from gefion.core.snapshot import PendingJob, RunningJob, Snapshot


@dataclass(frozen=True)
class GefionPolicy:
    name: str = "gefion"
    depth: int | None = 32
    backfill: bool = True
    preemption: bool = True
    weights: Weights = field(default_factory=Weights)

    def priorities(self, snapshot: Snapshot, now: float) -> PriorityTable:
        return multifactor(snapshot, now, self.weights)

    def may_preempt(self, job: PendingJob, victim: RunningJob, snapshot: Snapshot,
                    now: float) -> bool:
        if not victim.preemptible:
            return False
        return victim.spec.qos in snapshot.qos_of(job.spec.qos).preempts

    def victim_cost(self, victim: RunningJob, now: float) -> float:
        return lost_work_gpu_s(victim, now)
