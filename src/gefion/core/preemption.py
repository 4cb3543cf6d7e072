"""Phase 5 of the cycle: evict the cheapest set of running jobs that lets a waiting job start.

Victims are whole jobs (a gang is evicted on all its nodes or not at all) that the policy
lets this job preempt, offered cheapest first (the policy's ``victim_cost``, by default the
GPU-seconds of work thrown away). The search adds victims until the job fits, then prunes:
a victim whose eviction is not needed is spared, most expensive first. Only victims on the
nodes finally chosen are evicted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gefion.core.planner import Request, fit_at
from gefion.core.plans import PlanProfile
from gefion.core.profile import Availability, IntArray
from gefion.core.snapshot import RunningJob


def choose_victims(
    avail: Availability,
    req: Request,
    candidates: Sequence[RunningJob],
    node_units: IntArray,
    unit_count: int,
    plans: PlanProfile,
) -> tuple[list[RunningJob], IntArray] | None:
    """The victims to evict (``candidates`` come cheapest first) and the nodes ``req``
    would then get, or None if no set of candidates makes room."""
    g = req.gpus_per_node
    allowed = req.allowed
    extra = np.zeros(avail.n, dtype=np.int64)
    free = avail.free
    # Nodes that could hold the job now if plans were no obstacle: a cheap necessary test,
    # kept up to date as victims are added, before the full fit is tried.
    enough = int(np.count_nonzero(allowed & (free >= g)))

    def fits(extra_free: IntArray) -> IntArray | None:
        return fit_at(avail, req, avail.now, node_units, unit_count, plans=plans,
                      extra_free=extra_free)

    chosen: list[RunningJob] = []
    nodes = None
    for v in candidates:
        useful = False
        for n, gpus in v.alloc:
            if not allowed[n]:
                continue
            useful = True
            before = free[n] + extra[n] >= g
            extra[n] += gpus
            if not before and free[n] + extra[n] >= g:
                enough += 1
        if not useful:
            continue
        chosen.append(v)
        if enough >= req.nodes:
            nodes = fits(extra)
            if nodes is not None:
                break
    if nodes is None:
        return None
    for v in sorted(chosen, key=lambda v: chosen.index(v), reverse=True):
        trial = extra.copy()
        for n, gpus in v.alloc:
            trial[n] -= gpus
        trial_nodes = fits(trial)
        if trial_nodes is not None:
            chosen.remove(v)
            extra, nodes = trial, trial_nodes
    on_nodes = set(nodes.tolist())
    chosen = [v for v in chosen if any(n in on_nodes for n, _ in v.alloc)]
    return chosen, nodes
