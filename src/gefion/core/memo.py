"""What a cycle learns as it goes, to skip questions whose answers it already knows.

* :class:`FailureMemo`: shapes that failed a question this cycle. Within a cycle starts
  and plans only take capacity away, so a job asking at least as much as one that failed,
  in every dimension, fails too.
* :class:`Witness`: a job that could start now around the plans made so far, the proof
  that the plan of a job ahead of it matters (``run_cycle(..., etas=False)``).

Both live for one cycle (:mod:`gefion.core.cycle`).
"""

from __future__ import annotations

import numpy as np

from gefion.core.profile import BoolArray, IntArray


class FailureMemo:
    """Shapes that failed a question this cycle, per class key.

    If a job of ``g`` GPUs × ``n`` nodes for ``d`` seconds did not fit, no job of the same
    class key asking at least as much in every dimension will: within a cycle, starts and
    plans only ever take capacity away.
    """

    def __init__(self) -> None:
        self._failed: dict[tuple[str, object], list[tuple[int, int, int]]] = {}

    def failed(self, question: str, key: object, g: int, count: int, d: int) -> bool:
        for fg, fc, fd in self._failed.get((question, key), ()):
            if g >= fg and count >= fc and d >= fd:
                return True
        return False

    def add(self, question: str, key: object, g: int, count: int, d: int) -> None:
        # The failures a new one dominates say nothing more: only the smallest are kept.
        failed = self._failed.setdefault((question, key), [])
        failed[:] = [f for f in failed if not (f[0] >= g and f[1] >= count and f[2] >= d)]
        failed.append((g, count, d))

    def failed_all(self, question: str, key: object, g: IntArray, count: IntArray,
                   d: IntArray) -> BoolArray:
        """:meth:`failed` for many jobs of the same class key at once (one per element)."""
        out = np.zeros(len(g), dtype=np.bool_)
        for fg, fc, fd in self._failed.get((question, key), ()):
            out |= (g >= fg) & (count >= fc) & (d >= fd)
        return out


class Ruled:
    """Which of a row of candidates (in order) a memo's failures rule out: those of one
    class key (``open`` where it applies) whose shape a failure of that key dominates, kept
    current as candidates of the row fail in turn (:meth:`failed`): a job behind one that
    failed, asking at least as much, fails too."""

    __slots__ = ("count", "d", "g", "open", "out")

    def __init__(self, memo: FailureMemo, question: str, key: object, open_: BoolArray,
                 g: IntArray, count: IntArray, d: IntArray) -> None:
        self.open, self.g, self.count, self.d = open_, g, count, d
        self.out = open_ & memo.failed_all(question, key, g, count, d)

    def next_open(self, k: int) -> int:
        """The first candidate from ``k`` on not ruled out (the row's length if none)."""
        rest = self.out[k:]
        i = int(rest.argmin()) if len(rest) else 0
        return k + i if len(rest) and not rest[i] else len(self.out)

    def failed(self, k: int) -> None:
        """Candidate ``k`` failed: rule out those behind it that its shape dominates."""
        if self.open[k]:
            behind = slice(k + 1, None)
            self.out[behind] |= self.open[behind] & (self.g[behind] >= self.g[k]) & (
                self.count[behind] >= self.count[k]) & (self.d[behind] >= self.d[k])


class Witness:
    """A job behind the one being planned that could start now, around the plans so far:
    proof that a plan matters (see ``_Cycle._plan_matters``).

    A start or a plan takes GPUs on its own nodes only, from its start on; which nodes a
    job may use now depends on each node alone. So while the nodes it may use that no later
    start or plan has touched before its time limit ends are still enough, it still fits.
    ``nodes`` None (not plain, or one unit required): any such start or plan ends it."""

    __slots__ = ("end", "need", "nodes", "rank", "seen")

    def __init__(self, rank: int, end: float, need: int, nodes: set[int] | None,
                 seen: int) -> None:
        self.rank, self.end, self.need, self.nodes, self.seen = rank, end, need, nodes, seen

    def holds(self, taken: list[tuple[float, tuple[int, ...]]]) -> bool:
        """Whether it still fits after ``taken[seen:]`` (from when, on which nodes)."""
        nodes = self.nodes
        for start, on in taken[self.seen:]:
            if start >= self.end:
                continue  # it begins after the witness would have ended
            if nodes is None:
                return False
            nodes.difference_update(on)
            if len(nodes) < self.need:
                return False
        self.seen = len(taken)
        return True
