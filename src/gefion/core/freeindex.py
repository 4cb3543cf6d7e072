"""Free GPUs per node, indexed for placement now: the answer of
:func:`~gefion.core.placement.choose_nodes` among the up nodes with enough GPUs free,
kept between cycles and updated as GPUs are taken and given back.

A cycle asks "where does a job of ``count`` × ``g`` GPUs start now?" against the free GPUs
of every up node. With no plans, reservations or per-job node masks in the way, the usable
nodes are the up nodes with ``g`` GPUs free, and ``choose_nodes`` picks among them. This
index answers that question for one-node jobs by a few look-ups instead of a pass over
every node — best fit: the fewest free GPUs, then the unit with the fewest usable nodes,
then the lowest index; first fit: the lowest index — and hands gangs to ``choose_nodes``
itself. Bodies keep one beside their cycle (:mod:`gefion.core.strict`, the twin's engine).
"""

from __future__ import annotations

import bisect
from itertools import accumulate

import numpy as np

from gefion.core.placement import IntArray, choose_nodes
from gefion.core.topology import Cluster

#: Up to this many (unit, free count) candidates are compared one by one; more, as tables.
_SHORT = 8


class FreeIndex:
    """The free GPUs of every node of ``cluster``; down and drained nodes offer none."""

    def __init__(self, cluster: Cluster, *, first_fit: bool = False) -> None:
        capacity, up, units = cluster.arrays
        self.first_fit = first_fit
        self._capacity: list[int] = capacity.tolist()
        self._units = units
        self._unit_of: list[int] = units.tolist()
        self._up: list[bool] = up.tolist()
        self._up_np = up.copy()
        n_units = self._unit_count = len(cluster.units)
        top = self._top = cluster.max_gpus_per_node
        self._free: list[int] = [c if u else 0 for c, u in zip(self._capacity, self._up,
                                                                strict=True)]
        self._free_np = np.asarray(self._free, dtype=np.int64)
        # Up nodes by (unit, free GPUs), each list ascending; how many up nodes have
        # exactly f GPUs free, overall and per unit; per free count, the units that have
        # such nodes.
        self._at: list[list[list[int]]] = [[[] for _ in range(top + 1)]
                                           for _ in range(n_units)]
        self._hist = [0] * (top + 1)
        self._unit_hist = [[0] * (top + 1) for _ in range(n_units)]
        self._units_at: list[set[int]] = [set() for _ in range(top + 1)]
        for n, (f, u) in enumerate(zip(self._free, self._unit_of, strict=True)):
            if self._up[n]:
                self._enter(n, u, f)
        # The same as tables over all units, for ties among many units: per unit, the
        # lowest node with f GPUs free (``_none`` if none) and how many up nodes have g or
        # more; rows of the units changed since are brought up to date when asked.
        self._none = len(self._free)
        self._lowest = np.full((n_units, top + 1), self._none, dtype=np.int64)
        self._ge = np.zeros((n_units, top + 1), dtype=np.int64)
        self._stale: set[int] = set(range(n_units))

    @property
    def top(self) -> int:
        """The largest node's GPUs."""
        return self._top

    # -- changes -----------------------------------------------------------------------
    def _enter(self, n: int, u: int, f: int) -> None:
        bisect.insort(self._at[u][f], n)
        self._hist[f] += 1
        self._unit_hist[u][f] += 1
        self._units_at[f].add(u)

    def _leave(self, n: int, u: int, f: int) -> None:
        self._at[u][f].remove(n)
        self._hist[f] -= 1
        self._unit_hist[u][f] -= 1
        if not self._unit_hist[u][f]:
            self._units_at[f].discard(u)

    def change(self, n: int, gpus: int) -> None:
        """``gpus`` more (negative: fewer) free GPUs on node ``n`` (none if it is not up)."""
        if self._up[n]:
            u, f = self._unit_of[n], self._free[n]
            self._leave(n, u, f)
            self._free[n] = self._free_np[n] = f + gpus
            self._enter(n, u, f + gpus)
            self._stale.add(u)

    def set_up(self, n: int, up: bool) -> None:
        """Node ``n`` comes back (with all its GPUs free) or goes out of service (it must
        hold no job)."""
        if up == self._up[n]:
            return
        if up:
            self._up[n] = self._up_np[n] = True
            self._free[n] = self._free_np[n] = self._capacity[n]
            self._enter(n, self._unit_of[n], self._free[n])
        else:
            self._leave(n, self._unit_of[n], self._free[n])
            self._up[n] = self._up_np[n] = False
            self._free[n] = self._free_np[n] = 0
        self._stale.add(self._unit_of[n])

    def _tables(self) -> tuple[IntArray, IntArray]:
        """``_lowest`` and ``_ge``, up to date."""
        none = self._none
        for u in self._stale:
            self._ge[u] = list(accumulate(self._unit_hist[u][::-1]))[::-1]
            self._lowest[u] = [nodes[0] if nodes else none for nodes in self._at[u]]
        self._stale.clear()
        return self._lowest, self._ge

    # -- placement now -----------------------------------------------------------------
    def usable(self, g: int) -> int:
        """Up nodes with ``g`` GPUs free or more."""
        return sum(self._hist[g:])

    def place(self, count: int, g: int) -> list[int] | None:
        """What ``choose_nodes`` picks among the up nodes with ``g`` GPUs free, or None."""
        if self.usable(g) < count:
            return None
        if count > 1:
            free = self._free_np
            nodes = choose_nodes(np.flatnonzero(self._up_np & (free >= g)), free, count,
                                 self._units, self._unit_count, first_fit=self.first_fit)
            return None if nodes is None else nodes.tolist()
        if self.first_fit:  # the lowest-numbered node with g GPUs free
            levels = self._units_at[g:]
            if sum(len(units) for units in levels) <= _SHORT:
                return [min(self._at[u][f][0] for f, units in enumerate(levels, g)
                            for u in units)]
            return [int(self._tables()[0][:, g:].min())]
        f = next(f for f in range(g, self._top + 1) if self._hist[f])  # the fullest
        units = self._units_at[f]
        if len(units) == 1:
            (u,) = units
            return [self._at[u][f][0]]
        # Among equally full nodes: the unit with the fewest usable nodes, then the lowest
        # node index (choose_nodes' _fullest_node).
        if len(units) <= _SHORT:
            hist = self._unit_hist
            return [min((sum(hist[u][g:]), self._at[u][f][0]) for u in units)[1]]
        lowest_all, ge = self._tables()
        lowest = lowest_all[:, f]
        key = np.where(lowest < self._none, ge[:, g] * (self._none + 1) + lowest,
                       np.iinfo(np.int64).max)
        return [int(lowest[int(np.argmin(key))])]
