"""Plans carried from one cycle to the next, reused only where they are provably what a
fresh search would find.

A cycle plans the first ``depth`` waiting jobs with :func:`~gefion.core.planner.earliest_fit`,
a search over candidate start times. Between two cycles most of that work usually
repeats. A plan made last cycle is the answer again when

1. the snapshot comes from the same builder, the cluster is the same object (nodes and
   their states) and no advance reservation exists — so every running job that has not
   ended holds at least what it held, from the same times on;
2. the job asks the same shape for the same time, is a plain job (no reservation, no
   sensitive neighbours), and its planned start is not in the past;
3. no node that may offer more than last cycle could, on its own, give the job its GPUs
   per node for its duration at any start before the planned one (an exact check of one
   node against the base and the plans, :meth:`~gefion.core.profile.Availability.
   node_fits_before`). Those nodes are the nodes of the runs that ended (or were replaced)
   since, and the nodes of the plans that were ahead of the job then and are not ahead of
   it now — unless the plan became the start it planned (the same nodes, GPUs and times:
   the running job holds what the plan held). Every other node offers at most what it
   offered: its running jobs are still there, plans ahead of the job still hold it, and
   new starts and plans only take.

Then nothing can start the job earlier than before: an earlier start would need a node
with more room than last cycle, and none has it soon enough. If the job still fits at its
planned start, that start is the first one that fits and
:func:`~gefion.core.planner.fit_at` picks the nodes the search would pick. The cycle checks
exactly that (one fit at one time) and falls back to the search otherwise. The result is
the same as without the carry — a test runs the twin both ways and compares every job —
only cheaper. Bodies pass ``CycleResult.carry`` of their last cycle to the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from gefion.core.plans import Plan
from gefion.core.snapshot import Snapshot


class CarriedPlan(NamedTuple):
    """A job's plan as the cycle made it: the plan, the request it answered (GPUs per node,
    nodes, seconds), and how many of the cycle's plans were ahead of it (a named tuple,
    like :class:`~gefion.core.plans.Plan`)."""

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


def lineage(snapshot: Snapshot) -> tuple[Any, int, Callable[[int], frozenset[int] | None]] \
        | None:
    """``(builder identity, runs dropped, nodes of the runs dropped since a count)`` of a
    snapshot from a builder, else None."""
    lent: tuple[Any, int, Callable[[int], frozenset[int] | None]] | None = \
        snapshot.__dict__.get("_lineage")
    return lent


def usable_carry(carry: PlanCarry | None, snapshot: Snapshot,
                 now: float) -> tuple[PlanCarry, frozenset[int]] | None:
    """``carry`` and the nodes of the runs dropped since its cycle, if condition 1 holds
    between its cycle and this one, else None."""
    if carry is None or snapshot.reservations or now < carry.now:
        return None
    lent = lineage(snapshot)
    if lent is None or lent[0] is not carry.lineage or snapshot.cluster is not carry.cluster:
        return None
    released = lent[2](carry.releases)
    return None if released is None else (carry, released)
