"""Where and when a job fits: the one search used to start jobs now and to plan later starts.

:class:`Request` is one job's question — ``nodes`` × ``gpus_per_node`` for ``duration_s``,
on the nodes it may use. :func:`fit_at` answers "can it run over ``[s, s + d)``, and on
which nodes"; :func:`earliest_fit` walks the times at which the answer can change (GPU
releases, ends of blocks, reservation window edges) and returns the first that works.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gefion.core.placement import choose_nodes
from gefion.core.profile import INF, Availability, Block, BoolArray, IntArray
from gefion.core.reservations import Reservation


@dataclass(frozen=True, slots=True)
class Request:
    job_id: str
    nodes: int
    gpus_per_node: int
    duration_s: float
    allowed: BoolArray  # nodes this job may use at all
    one_unit: bool
    #: extra blocks over [start, end) from advance reservations, for this job
    reservation_blocks: Callable[[float, float], list[Block]]
    #: reservations whose window edges are candidate start times
    reservations: Sequence[Reservation] = ()


@dataclass(frozen=True, slots=True)
class Fit:
    start_s: float
    nodes: IntArray  # node indices, ascending


def usable_at(avail: Availability, req: Request, start: float, *,
              extra_free: IntArray | None = None,
              block_filter: Callable[[Block], bool] | None = None,
              with_reservations: bool = True) -> tuple[IntArray, IntArray]:
    """Nodes that can hold ``req`` over ``[start, start + d)``, and their worst free GPUs."""
    end = start + req.duration_s
    g = req.gpus_per_node
    tau = avail.tau_for(g)
    if extra_free is None:
        ok = req.allowed & (tau <= start)
        free = avail.free if start <= avail.now else avail.base_free_all(start)
    else:
        free = avail.free + extra_free
        ok = req.allowed & (free >= g) if start <= avail.now else req.allowed & (tau <= start)
    extra = req.reservation_blocks(start, end) if with_reservations else []
    blocks = avail.blocks_overlapping(start, end, extra)
    if block_filter is not None:
        blocks = {n: [b for b in bl if block_filter(b)] for n, bl in blocks.items()}
    if blocks:
        free = free.copy()
        bonus = 0
        for n, bl in blocks.items():
            if not ok[n] or not bl:
                continue
            bonus = int(extra_free[n]) if extra_free is not None else 0
            worst = avail.free_for(n, g, start, end, bl) + bonus
            free[n] = worst
            if worst < g:
                ok[n] = False
    return np.flatnonzero(ok), free


def fit_at(avail: Availability, req: Request, start: float, node_units: IntArray,
           unit_count: int, **kw: object) -> IntArray | None:
    usable, free = usable_at(avail, req, start, **kw)  # type: ignore[arg-type]
    return choose_nodes(usable, free, req.nodes, node_units, unit_count,
                        one_unit=req.one_unit)


def earliest_fit(avail: Availability, req: Request, node_units: IntArray, unit_count: int,
                 *, not_before: float) -> Fit | None:
    """The first start ``>= not_before`` at which ``req`` fits, or None if it never does."""
    tau = avail.tau_for(req.gpus_per_node)[req.allowed]
    finite = np.sort(tau[np.isfinite(tau)])
    if len(finite) < req.nodes:
        return None
    lower = max(not_before, float(finite[req.nodes - 1]))
    times: set[float] = {lower}
    times.update(float(t) for t in finite if t > lower)
    block_ends = [b.end_s for b in avail.blocks if b.end_s > lower]
    times.update(block_ends)
    last = max([lower, float(finite[-1]), *block_ends])
    horizon = last + req.duration_s + max(
        ((r.period_s or r.duration_s) for r in req.reservations), default=0.0) + 1.0
    for res in req.reservations:
        for ws, we in res.windows(lower, horizon):
            times.update(t for t in (ws, we) if t >= lower)
    for t in sorted(times):
        if t == INF:
            break
        if int(np.searchsorted(finite, t, side="right")) < req.nodes:
            continue  # too few nodes free in the base, whatever the blocks
        nodes = fit_at(avail, req, t, node_units, unit_count)
        if nodes is not None:
            return Fit(t, nodes)
    return None
