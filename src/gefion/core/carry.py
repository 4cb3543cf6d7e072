"""Plans carried from one cycle to the next, reused only where they are provably what a
fresh search would find.

A cycle plans the first ``depth`` waiting jobs with :func:`~gefion.core.planner.earliest_fit`,
a search over candidate start times. Between two cycles most of that work usually
repeats: a job that arrived changes nothing for the plans ahead of it. A plan made last
cycle is the answer again when

1. no running job ended or changed its expected end since (the snapshot builder counts the
   runs it dropped), the cluster is the same object (nodes and their states), and no
   advance reservation exists — so the running jobs hold at least what they held, from
   the same times on;
2. every plan that was ahead of the job then is ahead of it now, unchanged — plans only
   hold GPUs, so the profile in front of it offers at most what it offered;
3. the job asks the same shape for the same time, is a plain job (no reservation, no
   sensitive neighbours), and its planned start is not in the past.

Then nothing can start the job earlier than before (capacity only shrank, at every time),
and if it still fits at its planned start, that start is the first one that fits and
:func:`~gefion.core.planner.fit_at` picks the nodes the search would pick. The cycle checks
exactly that (one fit at one time) and falls back to the search otherwise. The result is
the same as without the carry — a test runs the twin both ways and compares every job —
only cheaper. Bodies pass ``CycleResult.carry`` of their last cycle to the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gefion.core.plans import Plan
from gefion.core.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class CarriedPlan:
    """A job's plan as the cycle made it: the plan, the request it answered (GPUs per node,
    nodes, seconds), and how many of the cycle's plans were ahead of it."""

    plan: Plan
    shape: tuple[int, int, float]
    ahead: int


@dataclass(frozen=True, slots=True)
class PlanCarry:
    """What a cycle leaves for the next one (``CycleResult.carry``)."""

    lineage: Any  # the builder's generation cell: the same builder, by identity
    releases: int  # runs the builder had dropped when the snapshot was taken
    cluster: Any  # the Cluster object the cycle ran on
    now: float
    plans: tuple[Plan, ...]  # in the order they were made
    by_job: Mapping[str, CarriedPlan]


def lineage(snapshot: Snapshot) -> tuple[Any, int] | None:
    """``(builder identity, runs dropped)`` of a snapshot from a builder, else None."""
    lent: tuple[Any, int] | None = snapshot.__dict__.get("_lineage")
    return lent


def usable_carry(carry: PlanCarry | None, snapshot: Snapshot,
                 now: float) -> PlanCarry | None:
    """``carry`` if condition 1 holds between its cycle and this one, else None."""
    if carry is None or snapshot.reservations or now < carry.now:
        return None
    lent = lineage(snapshot)
    if lent is None or lent[0] is not carry.lineage or lent[1] != carry.releases:
        return None
    return carry if snapshot.cluster is carry.cluster else None
