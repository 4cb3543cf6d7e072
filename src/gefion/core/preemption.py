"""Phase 5 of the cycle: evict the cheapest set of running jobs that lets a waiting job start.

Victims are whole jobs (a gang is evicted on all its nodes or not at all) that the policy
lets this job preempt, with a cost each (the policy's ``victim_cost``, by default the
GPU-seconds of work thrown away). The search is node by node: for every node the job may
use, the cheapest victims on it that free enough GPUs; then the cheapest nodes. If plans
or topology reject that set, a global search adds victims cheapest first until the job
fits and then spares, most expensive first, every victim that is not needed. Only victims
on the nodes finally chosen are evicted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gefion.core.planner import Request, fit_at
from gefion.core.plans import PlanProfile
from gefion.core.profile import Availability, IntArray
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
    candidates: Sequence[tuple[float, RunningJob]],
    node_units: IntArray,
    unit_count: int,
    plans: PlanProfile,
) -> tuple[list[RunningJob], IntArray] | None:
    """The victims to evict and the nodes ``req`` would then get, or None if no set of
    ``candidates`` (``(cost, job)`` pairs, cheapest first) makes room."""

    def fits(victims: Sequence[RunningJob]) -> IntArray | None:
        return fit_at(avail, req, avail.now, node_units, unit_count, plans=plans,
                      extra_free=_extra(victims, avail.n))

    found = _node_by_node(avail, req, candidates, plans, fits)
    if found is None:
        found = _greedy(avail, req, candidates, fits)
    if found is None:
        return None
    chosen, nodes = found
    on_nodes = set(nodes.tolist())
    chosen = [v for v in chosen if any(n in on_nodes for n, _ in v.alloc)]
    return (chosen, nodes) if chosen else None


def _node_by_node(avail: Availability, req: Request,
                  candidates: Sequence[tuple[float, RunningJob]], plans: PlanProfile,
                  fits: object) -> tuple[list[RunningJob], IntArray] | None:
    g, allowed = req.gpus_per_node, req.allowed
    free = avail.free
    window = plans.window(avail.now, avail.now + req.duration_s)
    if window is not None:  # GPUs already promised to jobs ahead are not free
        free = free - window[0].max(axis=0)
    on_node: dict[int, list[tuple[float, int, RunningJob]]] = {}
    for cost, v in candidates:
        for n, gpus in v.alloc:
            if allowed[n]:
                on_node.setdefault(n, []).append((cost, gpus, v))
    options: list[tuple[float, int, list[RunningJob]]] = []
    for n in np.flatnonzero(allowed & (free >= g)).tolist():
        options.append((0.0, n, []))
    for n, items in on_node.items():
        have = int(free[n])
        if have >= g:
            continue
        total, picked = 0.0, []
        for cost, gpus, v in items:  # cheapest first
            picked.append(v)
            total += cost
            have += gpus
            if have >= g:
                options.append((total, n, picked))
                break
    if len(options) < req.nodes:
        return None
    options.sort(key=lambda o: (o[0], o[1]))
    victims: dict[str, RunningJob] = {}
    for _, _, picked in options[:req.nodes]:
        for v in picked:
            victims[v.id] = v
    chosen = list(victims.values())
    assert callable(fits)
    nodes = fits(chosen)
    return (chosen, nodes) if nodes is not None else None


def _greedy(avail: Availability, req: Request,
            candidates: Sequence[tuple[float, RunningJob]],
            fits: object) -> tuple[list[RunningJob], IntArray] | None:
    assert callable(fits)
    g, free, allowed = req.gpus_per_node, avail.free, req.allowed
    extra = np.zeros(avail.n, dtype=np.int64)
    # Nodes that could hold the job now if plans were no obstacle: a cheap necessary test,
    # kept up to date as victims are added, before the full fit is tried.
    enough = int(np.count_nonzero(allowed & (free >= g)))
    chosen: list[tuple[float, RunningJob]] = []
    nodes = None
    for cost, v in candidates:
        useful = False
        for n, gpus in v.alloc:
            if allowed[n]:
                useful = True
                before = free[n] + extra[n] >= g
                extra[n] += gpus
                if not before and free[n] + extra[n] >= g:
                    enough += 1
        if not useful:
            continue
        chosen.append((cost, v))
        if enough >= req.nodes:
            nodes = fits([c[1] for c in chosen])
            if nodes is not None:
                break
    if nodes is None:
        return None
    keep = [c[1] for c in chosen]
    for k in range(len(chosen) - 1, -1, -1):  # spare the most expensive first
        trial = [v for v in keep if v is not chosen[k][1]]
        trial_nodes = fits(trial)
        if trial_nodes is not None:
            keep, nodes = trial, trial_nodes
    return keep, nodes
