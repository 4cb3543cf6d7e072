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
import itertools

import numpy as np

from gefion.core.placement import IntArray, choose_nodes
from gefion.core.topology import Cluster

#: Up to this many (unit, free count) candidates are compared one by one; more, from the
#: buckets (best fit) or a table (first fit).
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
        # Per unit, how many up nodes have g GPUs free or more (its usable nodes for a job
        # of g per node); per g, the units by that count (``_by_ge[g][k]``; a unit with none
        # is in no bucket): the best fit's tie-break among many equally full units, without
        # a pass over them. The buckets are brought up to date when read (see _buckets):
        # ``_filed[u][g]`` is the count unit u is filed under, ``_unfiled`` the units whose
        # counts changed since.
        self._ge_u = [[0] * (top + 1) for _ in range(n_units)]
        most = max(np.bincount(units, minlength=1).tolist()) if len(units) else 0
        self._by_ge: list[list[set[int]]] = [[set() for _ in range(most + 1)]
                                             for _ in range(top + 1)]
        self._filed = [[0] * (top + 1) for _ in range(n_units)]
        self._unfiled: set[int] = set()
        for n, (f, u) in enumerate(zip(self._free, self._unit_of, strict=True)):
            if self._up[n]:
                self._enter(n, u, f)
        # For first fit among many units, tables over all units: per unit, the lowest node
        # with f GPUs free (``_none`` if none); rows of the units changed since are
        # brought up to date when asked.
        self._none = len(self._free)
        self._lowest = np.full((n_units, top + 1), self._none, dtype=np.int64)
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
        self._usable(u, 0, f + 1, 1)

    def _leave(self, n: int, u: int, f: int) -> None:
        self._at[u][f].remove(n)
        self._hist[f] -= 1
        self._unit_hist[u][f] -= 1
        if not self._unit_hist[u][f]:
            self._units_at[f].discard(u)
        self._usable(u, 0, f + 1, -1)

    def _usable(self, u: int, lo: int, hi: int, step: int) -> None:
        """Unit ``u`` has ``step`` more usable nodes for jobs of ``lo`` to ``hi - 1`` GPUs
        per node (its place in the ``_by_ge`` buckets is moved when they are read)."""
        if hi > lo:
            ge = self._ge_u[u]
            ge[lo:hi] = [k + step for k in ge[lo:hi]]
            self._unfiled.add(u)

    def _buckets(self, g: int) -> list[set[int]]:
        """``_by_ge[g]``, every unit filed under its count now."""
        by_ge = self._by_ge
        for u in self._unfiled:
            filed, ge = self._filed[u], self._ge_u[u]
            for x, (was, k) in enumerate(zip(filed, ge, strict=True)):
                if was != k:
                    if was:
                        by_ge[x][was].discard(u)
                    if k:
                        by_ge[x][k].add(u)
                    filed[x] = k
        self._unfiled.clear()
        return by_ge[g]

    def change(self, n: int, gpus: int) -> None:
        """``gpus`` more (negative: fewer) free GPUs on node ``n`` (none if it is not up)."""
        if self._up[n]:  # _leave and _enter, inline: this runs for every node of every run
            u, f = self._unit_of[n], self._free[n]
            at, hist, unit_hist = self._at[u], self._hist, self._unit_hist[u]
            at[f].remove(n)
            hist[f] -= 1
            unit_hist[f] -= 1
            if not unit_hist[f]:
                self._units_at[f].discard(u)
            new = f + gpus
            self._free[n] = self._free_np[n] = new
            bisect.insort(at[new], n)
            hist[new] += 1
            unit_hist[new] += 1
            self._units_at[new].add(u)
            self._stale.add(u)
            if gpus > 0:  # usable now for jobs of f + 1 to new GPUs per node
                self._usable(u, f + 1, new + 1, 1)
            elif gpus < 0:
                self._usable(u, new + 1, f + 1, -1)

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

    def _lowest_table(self) -> IntArray:
        """``_lowest``, up to date."""
        none = self._none
        for u in self._stale:
            self._lowest[u] = [nodes[0] if nodes else none for nodes in self._at[u]]
        self._stale.clear()
        return self._lowest

    # -- placement now -----------------------------------------------------------------
    def usable(self, g: int) -> int:
        """Up nodes with ``g`` GPUs free or more."""
        return sum(self._hist[g:])

    def count_ge_table(self) -> IntArray:
        """:meth:`usable` for ``g`` = 0 … the largest node, and a trailing 0 for larger
        requests."""
        at_least = [*itertools.accumulate(reversed(self._hist))]
        return np.array([*reversed(at_least), 0], dtype=np.int64)

    def place(self, count: int, g: int) -> list[int] | None:
        """What ``choose_nodes`` picks among the up nodes with ``g`` GPUs free, or None."""
        if self.usable(g) < count:
            return None
        if count > 1:
            if not self.first_fit:
                in_one = self._gang_in_one_unit(count, g)
                if in_one is not None:
                    return in_one
            free = self._free_np  # first fit, or no unit holds the gang: spanning units
            nodes = choose_nodes((self._up_np & (free >= g)).nonzero()[0], free, count,
                                 self._units, self._unit_count, first_fit=self.first_fit)
            return None if nodes is None else nodes.tolist()
        if self.first_fit:  # the lowest-numbered node with g GPUs free
            levels = self._units_at[g:]
            if sum(len(units) for units in levels) <= _SHORT:
                return [min(self._at[u][f][0] for f, units in enumerate(levels, g)
                            for u in units)]
            return [int(self._lowest_table()[:, g:].min())]
        hist = self._hist
        f = g  # the fullest: the fewest GPUs free, g or more
        while not hist[f]:
            f += 1
        units = self._units_at[f]
        if len(units) == 1:
            (u,) = units
            return [self._at[u][f][0]]
        # Among equally full nodes: the unit with the fewest usable nodes, then the lowest
        # node index (choose_nodes' _fullest_node).
        at, ge = self._at, self._ge_u
        if len(units) <= _SHORT:
            return [min((ge[u][g], at[u][f][0]) for u in units)[1]]
        # The fewest usable nodes first: the units of each count k in turn, until one of
        # them has a node with f GPUs free.
        for k, by_k in enumerate(self._buckets(g)):
            if len(by_k) <= len(units):
                lows = [at[u][f][0] for u in by_k if u in units]
            else:
                lows = [at[u][f][0] for u in units if ge[u][g] == k]
            if lows:
                return [min(lows)]
        raise AssertionError("a unit with a node of f free GPUs has usable nodes")

    def _gang_in_one_unit(self, count: int, g: int) -> list[int] | None:
        """Best fit for a gang that one unit can hold (``choose_nodes``): the unit with the
        fewest usable nodes that still suffice (lowest index on ties), and in it the
        ``count`` nodes with the fewest free GPUs (lowest index on ties); None if no unit
        holds it."""
        by_ge = self._buckets(g)
        for k in range(count, len(by_ge)):
            if by_ge[k]:
                at = self._at[min(by_ge[k])]
                nodes: list[int] = []
                for f in range(g, self._top + 1):
                    nodes.extend(at[f][:count - len(nodes)])
                    if len(nodes) == count:
                        return sorted(nodes)
        return None

