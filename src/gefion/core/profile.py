"""The availability profile of one cycle: free GPUs per node now and over time.

Two parts, chosen so that the common questions are cheap:

* the **base**: free GPUs per node now, and per node the future releases of GPUs held by
  running jobs (and jobs started in this cycle) at their expected ends. The base only ever
  grows with time, so "when does node n first have g GPUs free" is one number,
  ``tau[g, n]``, kept in a small array;
* **blocks**: future holds that make the profile non-monotone — planned starts of
  higher-priority jobs (backfill reservations) and advance-reservation windows. There are
  few of them, and only the nodes they touch need exact checks.

Times are seconds; ``inf`` means "never".
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from gefion.core.plans import Plan, PlanProfile
from gefion.core.reservations import Reservation

if TYPE_CHECKING:
    from gefion.core.snapshot import BaseView

INF = float("inf")
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Block:
    """``gpus`` held on node ``node`` over ``[start_s, end_s)``; ``owner`` is a job id."""

    start_s: float
    end_s: float
    node: int
    gpus: int
    owner: str


class Availability:
    """Mutable per-cycle working state; created by the cycle, never shared across cycles."""

    def __init__(self, capacity: Sequence[int] | IntArray, up: Sequence[bool] | BoolArray,
                 now: float,
                 holds: tuple[IntArray, IntArray, FloatArray] | None = None,
                 lent: BaseView | None = None) -> None:
        """``holds``: the running jobs' GPUs as (node, GPUs, until) columns; the same as
        :meth:`hold_many` right after construction, for the price of one base.

        ``lent``: the base the snapshot builder keeps (:class:`~gefion.core.snapshot.
        BaseView`), valid when every running job ends after ``now``. Nothing is sorted or
        recomputed here: free GPUs are copied, the counts of nodes by free GPUs read off
        the builder's histogram, ``tau`` made when first asked, and a node's releases
        copied only when the cycle touches the node. Nothing lent is written to."""
        self.now = now
        self.n = len(capacity)
        self.capacity: IntArray = np.asarray(capacity, dtype=np.int64)
        self.up: BoolArray = np.asarray(up, dtype=np.bool_)
        self.max_gpus = int(self.capacity.max()) if self.n else 0
        self.plans: list[Plan] = []
        self.profile = PlanProfile(self.n)
        self._dirty: set[int] = set()
        self._count_ge: list[int] | None = None
        # Releases of running jobs: sorted columns, turned into a per-node list only for
        # nodes that change during the cycle (a cycle touches few of 12,500 nodes).
        self._rel_nodes: IntArray = np.zeros(0, dtype=np.int64)
        self._rel_times: FloatArray = np.zeros(0)
        self._rel_gpus: IntArray = np.zeros(0, dtype=np.int64)
        self._releases: dict[int, list[tuple[float, int]]] = {}
        # A node that is drained or down offers nothing, now or later.
        self.free: IntArray
        self._tau: FloatArray | None = None
        self._padded: FloatArray | None = None  # see tau_padded
        self._tau_of: Callable[[], FloatArray] | None = None
        self._lent_releases: Sequence[Sequence[tuple[float, int]]] | None = None
        if lent is not None:
            self.free = lent.free.copy()
            self._count_ge = [*itertools.accumulate(reversed(lent.free_hist))][-2::-1]
            self._tau_of = lent.tau  # ``tau`` is made from it when first asked
            self._lent_releases = lent.releases
            return
        self.free = np.where(self.up, self.capacity, 0).astype(np.int64)
        self.tau = np.full((self.max_gpus + 1, self.n), INF)
        if holds is not None:
            self._set_holds(*holds)
        self._base_tau()

    @property
    def tau(self) -> FloatArray:
        """``tau[g, n]``: the earliest time node ``n`` has ``g`` GPUs free in the base. Made
        on first use from the builder's table: a cycle that starts what fits and plans
        nothing never pays for it (a table of 9 × 12,500 on the largest clusters)."""
        tau = self._tau
        if tau is None:
            assert self._tau_of is not None
            tau = np.maximum(self._tau_of(), self.now)
            if not self.up.all():
                tau[:, ~self.up] = INF
            self._tau = tau
        return tau

    @tau.setter
    def tau(self, value: FloatArray) -> None:
        self._tau = value
        self._padded = None

    def tau_padded(self) -> FloatArray:
        """``tau`` up to date, with a last row of ``inf`` below it: row ``g`` for any ``g``
        up to one past the largest node is then a look-up (``inf``: never)."""
        self._refresh()
        padded = self._padded
        if padded is None:
            padded = self._padded = np.vstack((self.tau, np.full((1, self.n), INF)))
        return padded

    # -- building the base --------------------------------------------------------------
    def hold(self, node: int, gpus: int, until_s: float) -> None:
        """Take ``gpus`` on ``node`` from now until ``until_s`` (a running or started job)."""
        if not self.up[node]:
            return  # its GPUs are unavailable anyway, before and after
        before = int(self.free[node])
        self.free[node] = before - gpus
        releases = self._node_releases(node)
        if until_s < INF:
            bisect.insort(releases, (max(until_s, self.now), gpus))
        self._dirty.add(node)
        cge = self._count_ge
        if cge is not None:  # the node no longer counts for the sizes it dropped below
            for x in range(max(0, before - gpus + 1), min(before, self.max_gpus) + 1):
                cge[x] -= 1

    def hold_many(self, nodes: Sequence[int] | IntArray, gpus: Sequence[int] | IntArray,
                  until_s: Sequence[float] | FloatArray) -> None:
        """Hold the running jobs' GPUs, all at once, before anything else is held."""
        if len(nodes):
            self._set_holds(nodes, gpus, until_s)
            self._base_tau()

    def _set_holds(self, nodes: Sequence[int] | IntArray, gpus: Sequence[int] | IntArray,
                   until_s: Sequence[float] | FloatArray) -> None:
        node_arr = np.asarray(nodes, dtype=np.int64)
        gpu_arr = np.asarray(gpus, dtype=np.int64)
        until = np.maximum(np.asarray(until_s, dtype=np.float64), self.now)
        live = self.up[node_arr]
        node_arr, gpu_arr, until = node_arr[live], gpu_arr[live], until[live]
        self.free -= np.bincount(node_arr, weights=gpu_arr, minlength=self.n).astype(np.int64)
        order = np.lexsort((gpu_arr, until, node_arr))
        self._rel_nodes, self._rel_times = node_arr[order], until[order]
        self._rel_gpus = gpu_arr[order]
        self._count_ge = None

    def _node_releases(self, node: int) -> list[tuple[float, int]]:
        rel = self._releases.get(node)
        if rel is None:
            pairs: Sequence[tuple[float, int]]
            if self._lent_releases is not None:  # the builder's, in order: copied on touch
                pairs = self._lent_releases[node]
            else:
                lo, hi = np.searchsorted(self._rel_nodes, [node, node + 1])
                pairs = list(zip(self._rel_times[lo:hi].tolist(),
                                 self._rel_gpus[lo:hi].tolist(), strict=True))
            rel = self._releases[node] = [(t, g) for t, g in pairs if t < INF]
        return rel

    def _base_tau(self) -> None:
        """``tau`` for every node from the free GPUs and the sorted releases, vectorised:
        each release sets ``tau[g, n]`` for the sizes ``g`` it newly makes reachable."""
        tau = self.tau
        self._padded = None
        tau[:] = INF
        sizes = np.arange(self.max_gpus + 1)[:, None]
        tau[(sizes <= self.free[None, :]) & self.up[None, :]] = self.now
        n_s, t_s, g_s = self._rel_nodes, self._rel_times, self._rel_gpus
        if not len(n_s):
            return
        total = np.cumsum(g_s)
        first = np.flatnonzero(np.concatenate(([True], n_s[1:] != n_s[:-1])))
        before_group = np.concatenate(([0], total[first[1:] - 1]))
        group_len = np.diff(np.append(first, len(n_s)))
        after = total - np.repeat(before_group, group_len) + self.free[n_s]
        lo = after - g_s + 1
        hi = np.minimum(after, self.capacity[n_s])
        count = np.maximum(0, hi - lo + 1)
        if not count.sum():
            return
        offsets = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        sizes_hit = np.repeat(lo, count) + offsets
        keep = np.isfinite(np.repeat(t_s, count))
        tau[sizes_hit[keep], np.repeat(n_s, count)[keep]] = np.repeat(t_s, count)[keep]

    def _refresh(self) -> None:
        if not self._dirty:
            return
        self._padded = None
        tau, rows = self.tau, self.max_gpus + 1
        for n in self._dirty:
            if not self.up[n]:
                tau[:, n] = INF
                continue
            tau[:, n] = tau_column(int(self.free[n]), int(self.capacity[n]),
                                   self._node_releases(n), self.now, rows)
        self._dirty.clear()

    # -- queries ------------------------------------------------------------------------
    def tau_for(self, gpus: int) -> FloatArray:
        """Per node, the earliest time the base has ``gpus`` free (``inf`` if never)."""
        self._refresh()
        if gpus > self.max_gpus:
            return np.full(self.n, INF)
        row: FloatArray = self.tau[gpus]
        return row

    def count_ge(self, gpus: int) -> int:
        """Nodes with at least ``gpus`` free now in the base (blocks ignored)."""
        return self.counts_ge()[gpus] if gpus <= self.max_gpus else 0

    def counts_ge(self) -> list[int]:
        """:meth:`count_ge` for ``gpus`` = 0 … the largest node (the list kept: read only)."""
        if self._count_ge is None:  # one pass: nodes per free count (below 0 as -1),
            top = self.max_gpus       # summed from the top
            per = np.bincount(np.clip(self.free, -1, top) + 1, minlength=top + 2)
            self._count_ge = np.cumsum(per[::-1])[::-1][1:].tolist()
        return self._count_ge

    def node_fits_before(self, node: int, gpus: int, duration: float, before: float) -> bool:
        """Whether ``node`` alone could give ``gpus`` over ``[t, t + duration)`` for some
        start ``now <= t < before``, around every plan: what :meth:`usable` answers for
        that node, asked at every start at which the answer can turn (now, and each time
        GPUs come back or a plan row begins or ends)."""
        if not self.up[node] or gpus > self.capacity[node] or before <= self.now:
            return False
        self._refresh()
        back = self.tau[1:, node].tolist()  # when 1, 2, ... GPUs are free: ascending
        times = self.profile.times
        holds = self.profile.rows[:, node].tolist()

        def free(t: float) -> int:
            row = bisect.bisect_right(times, t) - 1
            return bisect.bisect_right(back, t) - (holds[row] if row >= 0 else 0)

        now = self.now
        points = [now, *sorted({t for t in back if now < t < INF}
                               | {t for t in times if t > now})]
        # A start fits when it and every turn before its end have the GPUs free: walking
        # back from the last turn, keep the first turn after each point that lacks them.
        short_at = INF
        for t in reversed(points):
            if free(t) >= gpus:
                if t < before and short_at >= t + duration:
                    return True
            else:
                short_at = t
        return False

    def base_free_all(self, t: float) -> IntArray:
        """Free GPUs of the base on every node at time ``t``."""
        self._refresh()
        free: IntArray = np.add.reduce(self.tau[1:] <= t, axis=0, dtype=np.int64)
        return free

    # -- plans and windows --------------------------------------------------------------
    def add_plan(self, plan: Plan) -> None:
        """Hold ``plan`` in the profile: later jobs fit around it (backfill)."""
        self.plans.append(plan)
        self.profile.add(plan)

    def usable(self, gpus: int, allowed: BoolArray, start: float, end: float, *,
               plans: PlanProfile | None = None, blocks: Sequence[Block] = (),
               extra_free: IntArray | None = None) -> tuple[BoolArray, IntArray]:
        """Nodes that can give ``gpus`` over ``[start, end)``, and their worst free GPUs.

        ``plans`` defaults to every plan so far (pass an empty profile to ignore them);
        ``blocks`` are extra holds for this job only (advance reservations); ``extra_free``
        adds GPUs per node now (those of jobs being preempted).
        """
        plans = self.profile if plans is None else plans
        if start <= self.now:
            free = self.free if extra_free is None else self.free + extra_free
            ok = allowed & (free >= gpus)
        else:
            free = self.base_free_all(start)
            ok = allowed & (free >= gpus)
        held = plans.worst(start, end)
        if held is not None:
            worst = free - held
            # The base grows with time: a node that fails against its worst hold may still
            # fit if GPUs come back before the hold begins. Check those exactly.
            unsure = (ok & (worst < gpus) & (held > 0)).nonzero()[0]
            window = plans.window(start, end) if len(unsure) else None
            # Exact unless the one row in the window is already under way at ``start``
            # (then the base at ``start`` is the base under it).
            if window is not None and (len(window[1]) > 1 or window[1][0] > start):
                rows, row_starts = window
                self._refresh()
                # base[u, k]: free GPUs of unsure node u when row k begins.
                base = np.add.reduce(
                    self.tau[1:, unsure][:, :, None] <= row_starts[None, None, :], axis=0,
                    dtype=np.int64)
                if extra_free is not None:
                    base = base + extra_free[unsure][:, None]
                worst[unsure] = (base - rows[:, unsure].T).min(axis=1)
            free = worst
            ok = ok & (free >= gpus)
        if blocks:
            free = free.copy()
            by_node: dict[int, list[Block]] = {}
            for b in blocks:
                if b.start_s < end and b.end_s > start:
                    by_node.setdefault(b.node, []).append(b)
            for n, bl in by_node.items():
                if ok[n]:
                    reserved = max(
                        sum(b.gpus for b in bl if b.start_s <= t < b.end_s)
                        for t in {start, *(b.start_s for b in bl if b.start_s > start)})
                    free[n] = min(int(free[n]), int(self.capacity[n]) - reserved)
                    if free[n] < gpus:
                        ok[n] = False
        return ok, free


def tau_column(free: int, capacity: int, releases: Iterable[tuple[float, int]], now: float,
               rows: int) -> list[float]:
    """One node's column of ``tau``: for ``g`` = 0 … ``rows - 1``, when the node first has
    ``g`` GPUs free — ``now`` for up to ``free`` GPUs, then as ``releases`` (time, GPUs; in
    time order) give GPUs back; ``inf`` past its ``capacity`` and past all it gets back."""
    reach = max(0, min(free, capacity))
    col = [now] * (reach + 1) + [INF] * (rows - reach - 1)
    g = reach + 1
    for t, gpus in releases:
        if g > capacity:
            break
        free += gpus
        top = min(free, capacity)
        if top >= g:
            col[g:top + 1] = [t] * (top + 1 - g)
            g = top + 1
    return col


def reservation_blocks(reservations: Sequence[Reservation], node_index: dict[str, int],
                       capacity: IntArray, admitted: Sequence[bool], requested: str | None,
                       start: float, end: float) -> list[Block]:
    """Blocks that advance reservations put in the way of one job over ``[start, end)``.

    A reservation the job is not admitted to blocks its nodes during its windows. The
    reservation a job names confines it: its nodes are blocked *outside* its windows.
    """
    out: list[Block] = []
    for res, ok in zip(reservations, admitted, strict=True):
        if res.name == requested and not res.maintenance:
            gaps: list[tuple[float, float]] = []
            cursor = start
            for ws, we in res.windows(start, end):
                if ws > cursor:
                    gaps.append((cursor, ws))
                cursor = max(cursor, we)
            if cursor < end:
                gaps.append((cursor, end))
            spans = gaps
        elif ok:
            continue
        else:
            spans = list(res.windows(start, end))
        for ws, we in spans:
            for name in res.nodes:
                n = node_index.get(name)
                if n is not None:
                    out.append(Block(ws, we, n, int(capacity[n]), f"reservation:{res.name}"))
    return out
