"""Planned holds in the future: the step function of GPUs that plans keep per node.

A plan is a job's planned start: ``gpus`` on each of ``nodes`` over ``[start_s, end_s)``.
:class:`PlanProfile` keeps their sum as a small matrix — one row per interval between
consecutive plan edges, one column per node — so that "the most any plan holds on each node
over a window" is one slice and one ``max``. There are few rows (two edges per plan, and
plans are bounded by the reservation depth), so inserting a row by copying is cheap.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class Plan(NamedTuple):
    """A job's planned start: ``gpus`` on each of ``nodes`` over ``[start_s, end_s)``; a
    named tuple (a replay makes tens of thousands; a frozen dataclass costs five times as
    much to make)."""

    start_s: float
    end_s: float
    nodes: tuple[int, ...]
    gpus: int
    owner: str


class PlanProfile:
    """Row ``k`` holds the GPUs planned per node over ``[times[k], times[k + 1])``; the last
    row, from the last edge on, is always zero."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.times: list[float] = []
        self._buf: IntArray = np.zeros((0, n), dtype=np.int64)  # rows, then spare room
        self._worst: dict[tuple[int, int], IntArray] = {}  # (first row, end row) -> max
        self._times: FloatArray | None = None  # ``times`` as an array, made on first ask

    @property
    def rows(self) -> IntArray:
        """One row per edge (a view: valid until the next :meth:`add`)."""
        return self._buf[:len(self.times)]

    @classmethod
    def of(cls, n: int, plans: Iterable[Plan]) -> PlanProfile:
        profile = cls(n)
        for p in plans:
            profile.add(p)
        return profile

    @property
    def time_array(self) -> FloatArray:
        """``times`` as an array (valid until the next :meth:`add`)."""
        times = self._times
        if times is None:
            times = self._times = np.asarray(self.times, dtype=np.float64)
        return times

    def __bool__(self) -> bool:
        return bool(self.times)

    def _edge(self, t: float) -> int:
        i = bisect.bisect_left(self.times, t)
        if i < len(self.times) and self.times[i] == t:
            return i
        used, buf = len(self.times), self._buf
        if used == len(buf):  # grow by doubling: inserts shift rows in place
            buf = self._buf = np.concatenate((buf, np.zeros((max(8, used), self.n),
                                                            dtype=np.int64)))
        buf[i + 1:used + 1] = buf[i:used]
        if i > 0:
            buf[i] = buf[i - 1]
        else:
            buf[i] = 0
        self.times.insert(i, t)
        return i

    def add(self, plan: Plan) -> None:
        if plan.end_s <= plan.start_s or not plan.nodes:
            return
        self._worst.clear()
        self._times = None
        first = self._edge(plan.start_s)
        last = self._edge(plan.end_s)
        nodes = plan.nodes
        if len(nodes) == 1:  # most plans: a basic slice, not a gather
            self._buf[first:last, nodes[0]] += plan.gpus
        else:
            self._buf[first:last, list(nodes)] += plan.gpus

    def worst(self, start: float, end: float) -> IntArray | None:
        """The most any plan holds on each node at one time within ``[start, end)``."""
        if not self.times:
            return None
        k0 = max(0, bisect.bisect_right(self.times, start) - 1)
        k1 = bisect.bisect_left(self.times, end)
        if k1 <= k0:
            return None
        cached = self._worst.get((k0, k1))
        if cached is None:
            cached = self._worst[(k0, k1)] = self.rows[k0:k1].max(axis=0)
        return cached

    def window(self, start: float, end: float) -> tuple[IntArray, FloatArray] | None:
        """Rows overlapping ``[start, end)`` and the time each starts within the window."""
        if not self.times:
            return None
        k0 = max(0, bisect.bisect_right(self.times, start) - 1)
        k1 = bisect.bisect_left(self.times, end)  # rows k0 .. k1-1 begin before ``end``
        if k1 <= k0:
            return None
        starts = np.maximum(self.time_array[k0:k1], start)
        return self.rows[k0:k1], starts

    def blocked_until(self, start: float, end: float, room: IntArray) -> FloatArray:
        """Per node, the end of the last row overlapping ``[start, end)`` whose hold exceeds
        ``room`` (the GPUs a node can spare and still fit the job) — before then the node
        cannot take the job whatever is released; ``-inf`` where no row is in the way."""
        out = np.full(self.n, -np.inf)
        if not self.times:
            return out
        k0 = max(0, bisect.bisect_right(self.times, start) - 1)
        k1 = bisect.bisect_left(self.times, end)
        ends = [*self.times[1:], np.inf]
        for k in range(k0, k1):
            over = self.rows[k] > room
            if over.any():
                out[over] = ends[k]
        return out
