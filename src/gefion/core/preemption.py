"""Phase 5 of the cycle: evict the cheapest set of running jobs that lets a waiting job start.

Victims are whole jobs (a gang is evicted on all its nodes or not at all) that the policy
lets this job preempt. The search is greedy, cheapest first (the policy's ``victim_cost``,
by default the GPU-seconds of work thrown away), then pruned: a victim whose eviction is not
needed for the fit is spared, most expensive first. Only victims on the nodes finally chosen
are evicted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gefion.core.placement import choose_nodes
from gefion.core.planner import Request, usable_at
from gefion.core.profile import Availability, Block, IntArray
from gefion.core.snapshot import RunningJob


def _extra(victims: Sequence[RunningJob], n: int) -> IntArray:
    extra = np.zeros(n, dtype=np.int64)
    for v in victims:
        for node, gpus in v.alloc:
            extra[node] += gpus
    return extra


def choose_victims(
    avail: Availability,
    req: Request,
    candidates: Sequence[RunningJob],
    cost: Callable[[RunningJob], float],
    node_units: IntArray,
    unit_count: int,
    block_filter: Callable[[Block], bool],
) -> tuple[list[RunningJob], IntArray] | None:
    """The victims to evict and the nodes ``req`` would then get, or None if no set works."""
    ordered = sorted(candidates, key=lambda v: (cost(v), -v.start_s, v.id))
    # Only victims on nodes the job may use can help.
    ordered = [v for v in ordered if any(req.allowed[n] for n, _ in v.alloc)]

    def fits(victims: Sequence[RunningJob]) -> IntArray | None:
        usable, free = usable_at(avail, req, avail.now, extra_free=_extra(victims, avail.n),
                                 block_filter=block_filter)
        return choose_nodes(usable, free, req.nodes, node_units, unit_count,
                            one_unit=req.one_unit)

    chosen: list[RunningJob] = []
    nodes = None
    for v in ordered:
        chosen.append(v)
        nodes = fits(chosen)
        if nodes is not None:
            break
    if nodes is None:
        return None
    for v in sorted(chosen, key=lambda v: (-cost(v), v.start_s, v.id)):
        trial = [c for c in chosen if c is not v]
        trial_nodes = fits(trial)
        if trial_nodes is not None:
            chosen, nodes = trial, trial_nodes
    on_nodes = set(int(n) for n in nodes)
    chosen = [v for v in chosen if any(n in on_nodes for n, _ in v.alloc)]
    return chosen, nodes
