"""``gefion``: the default — multifactor priority, topology-aware placement, backfill with a
reservation depth, and preemption by QOS (a job may evict preemptible jobs of the QOS its
own QOS names in ``preempts``)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from gefion.core.columns import any_preemptible
from gefion.core.policies.base import lost_work_gpu_s
from gefion.core.priority import PriorityTable, Weights, multifactor
from gefion.core.snapshot import PendingJob, RunningJob, Snapshot


@dataclass(frozen=True)
class GefionPolicy:
    name: str = "gefion"
    depth: int | None = 16
    backfill: bool = True
    preemption: bool = True
    requeue_victims: bool = False  # the victim's QOS decides
    placement: str = "best-fit"
    weights: Weights = field(default_factory=Weights)

    @property
    def evicts_preemptible_only(self) -> bool:
        return True  # victim_keys: None for jobs not marked preemptible

    @property
    def uses_fairshare(self) -> bool:
        return self.weights.fairshare != 0

    def priorities(self, snapshot: Snapshot, now: float) -> PriorityTable:
        return multifactor(snapshot, now, self.weights)

    def preemptor_keys(self, jobs: Sequence[PendingJob], snapshot: Snapshot,
                       now: float) -> list[Hashable | None]:
        # The QOS decides: a job may preempt the QOS its own QOS lists.
        keys: dict[str, frozenset[str] | None] = {}
        for name, qos in snapshot.qos.items():
            keys[name] = qos.preempts or None
        default = keys.get("normal")
        return [keys.get(j.spec.qos, default) for j in jobs]

    def victim_keys(self, victims: Sequence[RunningJob], snapshot: Snapshot,
                    now: float) -> list[Hashable | None]:
        if victims is snapshot.running and not any_preemptible(snapshot):
            return [None] * len(victims)  # the common case: nobody may be evicted
        return [v.spec.qos if v.preemptible else None for v in victims]

    def may_preempt(self, preemptor_key: Hashable, victim_key: Hashable | None) -> bool:
        assert isinstance(preemptor_key, frozenset)
        return victim_key in preemptor_key

    def victim_cost(self, victim: RunningJob, now: float) -> float:
        return lost_work_gpu_s(victim, now)
