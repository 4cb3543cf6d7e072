"""Where and when a job fits: the one search used to start jobs now and to plan later starts.

:class:`Request` is one job's question — ``nodes`` × ``gpus_per_node`` for ``duration_s``,
on the nodes it may use. :func:`fit_at` answers "can it run over ``[s, s + d)``, and on
which nodes"; :func:`earliest_fit` walks the times at which the answer can change (GPU
releases, ends of plans, reservation window edges) and returns the first that works,
jumping past times at which too few nodes can possibly be free.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from gefion.core.placement import choose_nodes
from gefion.core.plans import PlanProfile
from gefion.core.profile import INF, Availability, Block, BoolArray, FloatArray, IntArray
from gefion.core.reservations import Reservation


@dataclass(frozen=True, slots=True)
class Request:
    """One job's question to the planner. ``job_id`` names the job it was made for; within
    a cycle, plain jobs of one shape share one request (the first such job's)."""

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


class Fit(NamedTuple):
    """Where and when a job fits (a named tuple: made for every search and carried plan)."""

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
    return choose_nodes(ok.nonzero()[0], free, req.nodes, node_units, unit_count,
                        one_unit=req.one_unit, first_fit=req.first_fit)


def fitting_nodes(avail: Availability, req: Request, start: float, node_units: IntArray,
                  unit_count: int) -> BoolArray | None:
    """The nodes :func:`fit_at` may choose from for ``req`` at ``start``, around every plan
    (a mask), if they are enough — in one unit if it must be one; None if it does not fit
    then. It answers "does it fit" without choosing nodes."""
    end = start + req.duration_s
    ok, _ = avail.usable(req.gpus_per_node, req.allowed, start, end,
                         blocks=req.reservation_blocks(start, end))
    if not req.one_unit:
        return ok if int(np.count_nonzero(ok)) >= req.nodes else None
    per_unit = np.bincount(node_units[ok], minlength=unit_count)
    return ok if len(per_unit) and int(per_unit.max()) >= req.nodes else None


def earliest_fit(avail: Availability, req: Request, node_units: IntArray, unit_count: int,
                 *, not_before: float) -> Fit | None:
    """The first start ``>= not_before`` at which ``req`` fits, or None if it never does."""
    g, need = req.gpus_per_node, req.nodes
    nodes_ok = req.allowed.nonzero()[0]
    if len(nodes_ok) < need:
        return None
    every = len(nodes_ok) == avail.n  # the usual case: no column to gather
    base = avail.tau_for(g) if every else avail.tau_for(g)[nodes_ok]
    finite = np.sort(base[base < INF])  # tau is a time or inf, never -inf or NaN
    if len(finite) < need:
        return None
    lower = max(not_before, float(finite[need - 1]))
    if req.reservations:  # reservation blocks differ per start: try each start in turn
        return _walk(avail, req, _reservation_starts(avail, req, finite, lower), finite,
                     node_units, unit_count)
    edges = avail.profile.time_array
    # Candidate starts: when GPUs come back, when plans end — ascending.
    times = _ascending_unique(np.concatenate((finite[finite > lower], (lower,),
                                              edges[edges > lower])))
    return _scan(avail, req, times, nodes_ok, every, base, node_units, unit_count)


def _reservation_starts(avail: Availability, req: Request, finite: FloatArray,
                        lower: float) -> FloatArray:
    """Candidate starts of a job that advance reservations touch: when GPUs come back,
    when plans end and every window edge before the horizon — ascending."""
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
    times = _ascending_unique(np.concatenate((finite[finite > lower], np.asarray(extra))))
    return times[times < INF]


def _ascending_unique(values: FloatArray) -> FloatArray:
    """``np.unique(values)`` without its general-purpose checks (a search's hot path)."""
    values.sort()
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=np.bool_)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _walk(avail: Availability, req: Request, times: FloatArray, finite: FloatArray,
          node_units: IntArray, unit_count: int) -> Fit | None:
    """The first of ``times`` (ascending) at which ``req`` fits, trying them in turn."""
    tau_all = avail.tau_for(req.gpus_per_node)
    room = avail.capacity - req.gpus_per_node
    k = 0
    while k < len(times):
        t = float(times[k])
        k += 1
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


def _scan(avail: Availability, req: Request, times: FloatArray, nodes_ok: IntArray,
          every: bool, base: FloatArray, node_units: IntArray, unit_count: int) -> Fit | None:
    """:func:`_walk` without advance reservations, a run of starts at a time.

    Starts whose window ``[t, t + d)`` meets the same plan rows form a run. Within a run,
    node ``n`` can take the job at ``t`` exactly when :meth:`Availability.usable` says so:
    the base has ``g`` GPUs plus the hold of the row under ``t`` free by ``t``, and ``g``
    plus the hold of each later row free by that row's start. (``tau[h, n]`` is when node
    ``n`` first has ``h`` GPUs free, so each test is one look-up.) That gives each node a
    threshold time, and the run's first start that can fit is the N-th smallest threshold;
    only that start — and, when a one-unit gang does not fit there, the next ones — go
    through :func:`fit_at`, which picks the nodes. Runs are decided a few at a time, as
    arrays of runs × nodes. ``nodes_ok``: the nodes the job may use (``every``: all of
    them); ``base``: their row of ``tau`` for its GPUs per node.
    """
    g, need, d = req.gpus_per_node, req.nodes, req.duration_s
    edges = avail.profile.time_array
    if not len(edges):
        starts = times[times >= float(np.partition(base, need - 1)[need - 1])]
        return _fit_in_run(avail, req, starts, base, nodes_ok, node_units, unit_count)
    k0 = np.maximum(np.searchsorted(edges, times, side="right") - 1, 0)
    k1 = np.searchsorted(edges, times + d, side="left")
    under = times >= edges[0]  # a row already holds at the start itself
    cut = np.flatnonzero((k0[1:] != k0[:-1]) | (k1[1:] != k1[:-1])
                         | (under[1:] != under[:-1])) + 1
    bounds = np.array([0, *cut.tolist(), len(times)])
    # needs[k, n]: when node n has g GPUs plus row k's hold free (inf: never)
    top = avail.max_gpus + 1
    table = avail.tau_padded()
    if every:  # table[min(g + hold, top), n] for every row and node, as one flat take
        at = g + avail.profile.rows
        np.minimum(at, top, out=at)
        at *= avail.n
        at += np.arange(avail.n)
        needs = table.take(at)
    else:
        needs = table[np.minimum(g + avail.profile.rows[:, nodes_ok], top), nodes_ok]
    # late[k, n]: rows < k whose hold is late on node n. With few rows, a product with a
    # triangle of ones is that running sum down the rows, several times faster than cumsum.
    if len(edges) <= _BELOW_MAX:
        late = _below(len(edges)) @ (needs > edges[:, None]).astype(np.float32)
    else:
        late = np.zeros((len(edges) + 1, len(nodes_ok)), dtype=np.int64)
        np.cumsum(needs > edges[:, None], axis=0, out=late[1:])
    for c in range(0, len(bounds) - 1, _RUNS):
        run_at = bounds[c:c + _RUNS + 1]
        a = run_at[:-1]
        first, end, held = k0[a], k1[a], under[a]
        rows = end > first
        # a row under way at the start needs its hold free by then; every later one by
        # its own start (the base only grows)
        threshold = np.where((rows & held)[:, None], needs[first], base[None, :])
        lo = np.where(~rows, end, np.where(held, first + 1, first))
        blocked = late[np.maximum(lo, end)] - late[lo] > 0  # a later row not free in time
        ready = np.where(blocked, INF, threshold)
        earliest = np.partition(ready, need - 1, axis=1)[:, need - 1]
        for r in (earliest < INF).nonzero()[0].tolist():
            lo_t, hi_t = int(run_at[r]), int(run_at[r + 1])
            run = times[lo_t:hi_t]
            fit = _fit_in_run(avail, req, run[run >= earliest[r]], ready[r], nodes_ok,
                              node_units, unit_count)
            if fit is not None:
                return fit
    return None


def _fit_in_run(avail: Availability, req: Request, starts: FloatArray, ready: FloatArray,
                nodes_ok: IntArray, node_units: IntArray, unit_count: int) -> Fit | None:
    """The first of ``starts`` (ascending, within one run of :func:`_scan`, from the run's
    N-th smallest threshold on) at which ``req`` fits; ``ready`` holds the run's threshold
    of each node of ``nodes_ok``.

    At the first start, the nodes whose threshold has passed are exactly those
    :meth:`Availability.usable` finds, and there are at least N. When there are just N,
    :func:`~gefion.core.placement.choose_nodes` has nothing to choose — any placement
    but one in a single unit takes them all — so they are the fit, without asking
    :func:`fit_at` (most searches end so: one node becomes free first)."""
    if len(starts) and not req.one_unit:
        t = float(starts[0])
        at = (ready <= t).nonzero()[0]
        if len(at) == req.nodes:
            return Fit(t, nodes_ok[at])
    return _first_fit_of(avail, req, starts, node_units, unit_count)


#: Runs of candidate starts decided together by :func:`_scan`.
_RUNS = 8


#: Plan rows up to which :func:`_scan` sums late rows by a product (:func:`_below`).
_BELOW_MAX = 64


@functools.cache  # at most _BELOW_MAX tables of at most 16 KiB
def _below(rows: int) -> npt.NDArray[np.float32]:
    """``(rows + 1) × rows``: row ``k`` is 1 in the columns before ``k`` (sums of at most
    ``_BELOW_MAX`` ones: exact in float32)."""
    below: npt.NDArray[np.float32] = np.tril(np.ones((rows + 1, rows), dtype=np.float32), -1)
    return below


def _first_fit_of(avail: Availability, req: Request, starts: FloatArray,
                  node_units: IntArray, unit_count: int) -> Fit | None:
    """The first of ``starts`` at which :func:`fit_at` finds nodes."""
    for t in starts.tolist():
        nodes = fit_at(avail, req, t, node_units, unit_count)
        if nodes is not None:
            return Fit(t, nodes)
    return None
