"""The policy interface: what a scheduling policy decides, and nothing more.

A policy orders pending jobs (``priorities``), says how far ahead the plan reserves
(``depth``: 0 = no reservations, 1 = EASY, ``None`` = conservative), whether later jobs may
start ahead of a blocked one (``backfill``), and who may evict whom. Preemption is described
by classes, so the cycle can group victims once per cycle: ``preemptor_keys`` and
``victim_keys`` put jobs in classes (None: never preempts / never evicted), and
``may_preempt`` says which class may evict which; ``victim_cost`` orders victims, cheapest
first. Placement, planning and preemption mechanics live in the cycle and are shared.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gefion.core.priority import PriorityTable
from gefion.core.snapshot import PendingJob, RunningJob, Snapshot


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def depth(self) -> int | None: ...

    @property
    def backfill(self) -> bool: ...

    @property
    def preemption(self) -> bool: ...

    @property
    def requeue_victims(self) -> bool:
        """Victims always go back to the queue (time-slicing policies like LAS), whatever
        their QOS says."""
        ...

    @property
    def evicts_preemptible_only(self) -> bool:
        """Only running jobs marked preemptible (by their QOS, or their own spec) may be
        evicted: while none runs, the policy preempts nothing (a body may skip a cycle
        that could only have preempted)."""
        ...

    @property
    def placement(self) -> str:
        """``best-fit`` (pack, topology-aware; the default) or ``first-fit``."""
        ...

    @property
    def uses_fairshare(self) -> bool:
        """The order depends on fair-share factors. When False, a body may leave them
        uncomputed (the factors shown are then 1.0)."""
        ...

    def priorities(self, snapshot: Snapshot, now: float) -> PriorityTable:
        """The priority of every pending job of ``snapshot`` at ``now``. It reads the
        pending jobs, the tenancy (projects, QOS, fair share, grants), the cluster and the
        time — never the running jobs: a body may order the queue from a snapshot without
        them (:meth:`~gefion.core.builder.SnapshotBuilder.build_pending`)."""
        ...

    def preemptor_keys(self, jobs: Sequence[PendingJob], snapshot: Snapshot,
                       now: float) -> list[Hashable | None]: ...

    def victim_keys(self, victims: Sequence[RunningJob], snapshot: Snapshot,
                    now: float) -> list[Hashable | None]: ...

    def may_preempt(self, preemptor_key: Hashable, victim_key: Hashable | None) -> bool: ...

    def victim_cost(self, victim: RunningJob, now: float) -> float: ...


PLACEMENTS = ("best-fit", "first-fit")


@dataclass(frozen=True)
class NoPreemption:
    """Mixin for policies that never evict."""

    preemption: bool = False
    requeue_victims: bool = False

    @property
    def evicts_preemptible_only(self) -> bool:
        return True  # evicts nobody

    def preemptor_keys(self, jobs: Sequence[PendingJob], snapshot: Snapshot,
                       now: float) -> list[Hashable | None]:
        return [None] * len(jobs)

    def victim_keys(self, victims: Sequence[RunningJob], snapshot: Snapshot,
                    now: float) -> list[Hashable | None]:
        return [None] * len(victims)

    def may_preempt(self, preemptor_key: Hashable, victim_key: Hashable | None) -> bool:
        return False

    def victim_cost(self, victim: RunningJob, now: float) -> float:
        return lost_work_gpu_s(victim, now)


def lost_work_gpu_s(victim: RunningJob, now: float) -> float:
    """GPU-seconds of work an eviction throws away (no checkpoint assumed)."""
    return victim.gpus * max(0.0, now - victim.start_s)
