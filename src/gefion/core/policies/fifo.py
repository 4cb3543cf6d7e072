"""``fifo``: strict first-in, first-out. Nothing starts ahead of a job that must wait."""

from __future__ import annotations

from dataclasses import dataclass

from gefion.core.columns import pending_columns
from gefion.core.policies.base import NoPreemption
from gefion.core.priority import FloatArray, PriorityTable, Weights, factor_columns
from gefion.core.snapshot import Snapshot


def submit_order(snapshot: Snapshot, now: float) -> PriorityTable:
    """Priority = seconds waited: the oldest submission first (the factors still visible,
    made when first read: the order needs none of them)."""
    cols = pending_columns(snapshot)

    def factors() -> dict[str, FloatArray]:
        columns = factor_columns(snapshot, now, Weights())
        del columns["submit"]
        return columns

    return PriorityTable(cols.ids, now - cols.submit_s, factors, in_snapshot_order=True)


@dataclass(frozen=True)
class Fifo(NoPreemption):
    name: str = "fifo"
    depth: int | None = 1
    backfill: bool = False
    placement: str = "best-fit"

    @property
    def uses_fairshare(self) -> bool:
        return False  # submission order / attained service

    def priorities(self, snapshot: Snapshot, now: float) -> PriorityTable:
        return submit_order(snapshot, now)
