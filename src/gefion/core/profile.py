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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gefion.core.reservations import Reservation

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

    def __init__(self, capacity: Sequence[int], up: Sequence[bool], now: float) -> None:
        self.now = now
        self.n = len(capacity)
        self.capacity: IntArray = np.asarray(capacity, dtype=np.int64)
        self.up: BoolArray = np.asarray(up, dtype=np.bool_)
        self.max_gpus = int(self.capacity.max()) if self.n else 0
        # A node that is drained or down offers nothing, now or later.
        self.free: IntArray = np.where(self.up, self.capacity, 0).astype(np.int64)
        self.releases: list[list[tuple[float, int]]] = [[] for _ in range(self.n)]
        self.tau: FloatArray = np.full((self.max_gpus + 1, self.n), INF)
        self.blocks: list[Block] = []
        self._dirty: set[int] = set(range(self.n))
        self._count_ge: list[int] | None = None

    # -- building the base --------------------------------------------------------------
    def hold(self, node: int, gpus: int, until_s: float) -> None:
        """Take ``gpus`` on ``node`` from now until ``until_s`` (a running or started job)."""
        if not self.up[node]:
            return  # its GPUs are unavailable anyway, before and after
        self.free[node] -= gpus
        if until_s < INF:
            bisect.insort(self.releases[node], (max(until_s, self.now), gpus))
        self._dirty.add(node)
        self._count_ge = None

    def _refresh(self) -> None:
        if not self._dirty:
            return
        tau = self.tau
        for n in self._dirty:
            col = tau[:, n]
            col[:] = INF
            if not self.up[n]:
                continue
            free = int(self.free[n])
            cap = int(self.capacity[n])
            g = 0
            limit = min(free, cap)
            col[: max(0, limit) + 1] = self.now
            g = max(0, limit) + 1
            for t, gpus in self.releases[n]:
                free += gpus
                top = min(free, cap)
                if top >= g:
                    col[g: top + 1] = t
                    g = top + 1
                if g > cap:
                    break
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
        if self._count_ge is None:
            self._count_ge = [int(np.count_nonzero(self.free >= g))
                              for g in range(self.max_gpus + 1)]
        return self._count_ge[gpus] if gpus <= self.max_gpus else 0

    def base_free_at(self, node: int, t: float) -> int:
        """Free GPUs of the base on ``node`` at time ``t``."""
        free = int(self.free[node])
        for rt, gpus in self.releases[node]:
            if rt > t:
                break
            free += gpus
        return min(free, int(self.capacity[node]))

    def base_free_all(self, t: float) -> IntArray:
        """Free GPUs of the base on every node at time ``t``."""
        self._refresh()
        free: IntArray = np.count_nonzero(self.tau[1:] <= t, axis=0).astype(np.int64)
        return free

    def add_block(self, block: Block) -> None:
        self.blocks.append(block)

    def blocks_overlapping(self, start: float, end: float,
                           extra: Sequence[Block] = ()) -> dict[int, list[Block]]:
        out: dict[int, list[Block]] = {}
        for b in self.blocks:
            if b.start_s < end and b.end_s > start:
                out.setdefault(b.node, []).append(b)
        for b in extra:
            if b.start_s < end and b.end_s > start:
                out.setdefault(b.node, []).append(b)
        return out

    def free_for(self, node: int, gpus: int, start: float, end: float,
                 blocks: Sequence[Block]) -> int:
        """The fewest GPUs free on ``node`` over ``[start, end)`` after ``blocks``.

        The base only grows, so the minimum is reached at ``start`` or where a block begins.
        """
        checkpoints = {start}
        checkpoints.update(b.start_s for b in blocks if start < b.start_s < end)
        worst = 1 << 30
        for t in checkpoints:
            held = sum(b.gpus for b in blocks if b.start_s <= t < b.end_s)
            worst = min(worst, self.base_free_at(node, t) - held)
        return worst


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
