"""Where and when a job fits: the one search used to start jobs now and to plan later starts.

:class:`Request` is one job's question — ``nodes`` × ``gpus_per_node`` for ``duration_s``,
on the nodes it may use. :func:`fit_at` answers "can it run over ``[s, s + d)``, and on
which nodes"; :func:`earliest_fit` walks the times at which the answer can change (GPU
releases, ends of plans, reservation window edges) and returns the first that works,
jumping past times at which too few nodes can possibly be free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gefion.core.placement import choose_nodes
from gefion.core.plans import PlanProfile
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
    first_fit: bool = False  # lowest-numbered nodes instead of best fit

    def loosened(self) -> Request:
        """The same request without the one-unit requirement."""
        return Request(self.job_id, self.nodes, self.gpus_per_node, self.duration_s,
                       self.allowed, False, self.reservation_blocks, self.reservations,
                       self.first_fit)


@dataclass(frozen=True, slots=True)
class Fit:
    start_s: float
    nodes: IntArray  # node indices, ascending


def fit_at(avail: Availability, req: Request, start: float, node_units: IntArray,
           unit_count: int, *, plans: PlanProfile | None = None,
           with_reservations: bool = True,
           extra_free: IntArray | None = None) -> IntArray | None:
    """Nodes for ``req`` over ``[start, start + d)``, or None if it does not fit then."""
    end = start + req.duration_s
    blocks = req.reservation_blocks(start, end) if with_reservations else []
    ok, free = avail.usable(req.gpus_per_node, req.allowed, start, end, plans=plans,
                            blocks=blocks, extra_free=extra_free)
    return choose_nodes(np.flatnonzero(ok), free, req.nodes, node_units, unit_count,
                        one_unit=req.one_unit, first_fit=req.first_fit)


def earliest_fit(avail: Availability, req: Request, node_units: IntArray, unit_count: int,
                 *, not_before: float) -> Fit | None:
    """The first start ``>= not_before`` at which ``req`` fits, or None if it never does."""
    g = req.gpus_per_node
    tau_all = avail.tau_for(g)
    tau = tau_all[req.allowed]
    finite = np.sort(tau[np.isfinite(tau)])
    if len(finite) < req.nodes:
        return None
    lower = max(not_before, float(finite[req.nodes - 1]))
    plan_edges = [t for t in avail.profile.times if t > lower]
    extra: list[float] = [lower, *plan_edges]
    last = max([lower, float(finite[-1]), *plan_edges])
    horizon = last + req.duration_s + max(
        ((r.period_s or r.duration_s) for r in req.reservations), default=0.0) + 1.0
    for res in req.reservations:
        # Every window edge before the horizon, and at least the next window however far.
        for k, (ws, we) in enumerate(res.windows(lower, INF)):
            if k > 0 and ws >= horizon:
                break
            extra.extend(t for t in (ws, we) if t >= lower)
    # Candidate starts: when GPUs come back, when plans end, window edges — ascending.
    times = np.unique(np.concatenate((finite[finite > lower], np.asarray(extra))))
    room = avail.capacity - g
    k = 0
    while k < len(times):
        t = float(times[k])
        k += 1
        if t == INF:
            break
        if int(np.searchsorted(finite, t, side="right")) < req.nodes:
            continue  # too few nodes free in the base, whatever the plans
        # No start can succeed before N nodes are both released and past the plans that
        # leave them no room: if that is later than t, jump there without trying t.
        if avail.profile:
            ready = np.maximum(tau_all,
                               avail.profile.blocked_until(t, t + req.duration_s, room))
            skip_to = float(np.partition(ready[req.allowed], req.nodes - 1)[req.nodes - 1])
            if skip_to > t:
                k = int(np.searchsorted(times, skip_to, side="left"))
                continue
        nodes = fit_at(avail, req, t, node_units, unit_count)
        if nodes is not None:
            return Fit(t, nodes)
    return None
