"""``fifo-backfill``: Slurm-like — submission order with EASY backfill (depth 1).

The first job that cannot start gets a planned start; later jobs start early only if they
do not delay it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gefion.core.policies.base import NoPreemption
from gefion.core.policies.fifo import submit_order
from gefion.core.priority import PriorityTable
from gefion.core.snapshot import Snapshot


@dataclass(frozen=True)
class FifoBackfill(NoPreemption):
    name: str = "fifo-backfill"
    depth: int | None = 1
    backfill: bool = True
    placement: str = "best-fit"

    def priorities(self, snapshot: Snapshot, now: float) -> PriorityTable:
        return submit_order(snapshot, now)
