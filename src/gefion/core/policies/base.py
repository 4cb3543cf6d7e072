"""The policy interface: what a scheduling policy decides, and nothing more.

A policy orders pending jobs (``priorities``), says how far ahead the plan reserves
(``depth``: 0 = no reservations, 1 = EASY, ``None`` = conservative), whether later jobs may
start ahead of a blocked one (``backfill``), and which running jobs a waiting job may evict
(``may_preempt``, ``victim_cost``). Placement, planning and preemption mechanics live in the
cycle and are shared by every policy.
"""

from __future__ import annotations

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

    def priorities(self, snapshot: Snapshot, now: float) -> PriorityTable: ...

    def may_preempt(self, job: PendingJob, victim: RunningJob, snapshot: Snapshot,
                    now: float) -> bool: ...

    def victim_cost(self, victim: RunningJob, now: float) -> float: ...


@dataclass(frozen=True)
class NoPreemption:
    """Mixin for policies that never evict."""

    preemption: bool = False

    def may_preempt(self, job: PendingJob, victim: RunningJob, snapshot: Snapshot,
                    now: float) -> bool:
        return False

    def victim_cost(self, victim: RunningJob, now: float) -> float:
        return lost_work_gpu_s(victim, now)


def lost_work_gpu_s(victim: RunningJob, now: float) -> float:
    """GPU-seconds of work an eviction throws away (no checkpoint assumed)."""
    return victim.gpus * max(0.0, now - victim.start_s)
