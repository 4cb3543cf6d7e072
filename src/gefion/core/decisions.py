"""What a cycle returns: decisions (start, preempt), and for every job not started a reason,
its priority factors and, where the plan gives one, a planned start.

These are the single source the API, CLI, portal and tests read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import repeat
from typing import Any, NamedTuple, overload

import numpy as np
import numpy.typing as npt


class PendingReason(StrEnum):
    """Why a job did not start this cycle (like Slurm's ``Reason`` column)."""

    PRIORITY = "PRIORITY"              # resources are free, but held for jobs ahead of it
    RESOURCES = "RESOURCES"            # not enough free GPUs in the shape it needs
    RESERVATION = "RESERVATION"        # kept off by an advance reservation, or waits for its own
    DEPENDENCY = "DEPENDENCY"          # a dependency is not (yet) satisfied
    DEPENDENCY_NEVER = "DEPENDENCY_NEVER"  # a dependency can no longer be satisfied
    GRANT_EXHAUSTED = "GRANT_EXHAUSTED"  # the project has no active grant with hours left
    QOS_LIMIT = "QOS_LIMIT"            # over a limit of its QOS (time limit, GPUs per user)
    PROJECT_LIMIT = "PROJECT_LIMIT"    # the project already holds its maximum of GPUs
    ARRAY_LIMIT = "ARRAY_LIMIT"        # its array already runs its maximum of tasks (``%N``)
    TOPOLOGY = "TOPOLOGY"              # GPUs are free, but not within one scalable unit
    NODES_DOWN = "NODES_DOWN"          # would fit if drained/down nodes were up
    HELD = "HELD"                      # held by a user or operator
    PREEMPTING = "PREEMPTING"          # waiting for the jobs it preempts to leave
    UNSATISFIABLE = "UNSATISFIABLE"    # can never run on this cluster as asked


@dataclass(frozen=True, slots=True)
class Placement:
    """GPUs per node, in node order: ``(("dgx001", 8), ("dgx002", 8))``."""

    nodes: tuple[tuple[str, int], ...]

    @property
    def gpus(self) -> int:
        return sum(g for _, g in self.nodes)

    def as_dict(self) -> dict[str, int]:
        return dict(self.nodes)


@dataclass(frozen=True, slots=True)
class Start:
    job_id: str
    placement: Placement
    backfilled: bool = False  # started ahead of a higher-priority job that must wait


@dataclass(frozen=True, slots=True)
class Preemption:
    job_id: str
    grace_s: int
    for_job: str
    requeue: bool


class Planned(Mapping[str, Placement]):
    """The placements of the jobs a cycle planned (``CycleResult.planned``) by the cluster's
    node ``names``, each made from its node indices when first read: a replay plans tens
    of thousands of jobs and reads none of them."""

    def __init__(self, names: Sequence[str]) -> None:
        self._names = names
        self._nodes: dict[str, tuple[npt.NDArray[np.int64], int]] = {}
        self._made: dict[str, Placement] = {}

    def plan(self, job_id: str, nodes: npt.NDArray[np.int64], gpus: int) -> None:
        self._nodes[job_id] = (nodes, gpus)
        self._made.pop(job_id, None)

    def __getitem__(self, job_id: str) -> Placement:
        made = self._made.get(job_id)
        if made is None:
            nodes, gpus = self._nodes[job_id]
            names = self._names
            made = self._made[job_id] = Placement(tuple((names[n], gpus)
                                                        for n in nodes.tolist()))
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)


@dataclass(frozen=True, slots=True)
class PriorityFactors:
    """Normalised 0..1 factors and the weighted total, like ``sprio``."""

    priority: float
    age: float
    fairshare: float
    qos: float
    size: float
    grant: float


class Verdict(NamedTuple):
    """Why ``job_id`` is pending, and when the plan expects it to start (None: no plan).

    A named tuple rather than a dataclass: a cycle makes one per waiting job, and tuples
    are several times cheaper to build.
    """

    job_id: str
    reason: PendingReason
    planned_start_s: float | None = None
    detail: str = ""


#: Reason codes of a bulk run (see :meth:`Verdicts.add_run`).
RUN_REASONS = (PendingReason.RESOURCES, PendingReason.NODES_DOWN, PendingReason.PRIORITY,
               PendingReason.HELD)


class Verdicts(Sequence[Verdict]):
    """The verdicts of one cycle, in priority order.

    A cycle over many waiting jobs decides most of them in runs (the same few reasons, no
    plan); those runs are kept as arrays and become :class:`Verdict` objects only when
    someone reads them. Appending is for the cycle; readers see an ordinary sequence.
    """

    def __init__(self) -> None:
        self._done: list[Verdict] = []
        self._runs: list[tuple[int, Sequence[str], npt.NDArray[np.int64],
                               npt.NDArray[np.int64]]] = []  # (at, ids, index, reason)
        self._len = 0

    def append(self, verdict: Verdict) -> None:
        self._settle()
        self._done.append(verdict)
        self._len += 1

    def add_run(self, ids: Sequence[str], index: npt.NDArray[np.int64],
                reasons: npt.NDArray[np.int64]) -> None:
        """Jobs ``ids[index[k]]`` wait for ``RUN_REASONS[reasons[k]]``, with no plan."""
        if len(index):
            self._runs.append((self._len, ids, index, reasons))
            self._len += len(index)

    def _settle(self) -> None:
        if not self._runs:
            return
        runs, self._runs = self._runs, []
        done = self._done
        new = tuple.__new__
        for _, ids, index, reasons in runs:  # appends settle first: runs are at the end
            done.extend([new(Verdict, (ids[i], RUN_REASONS[r], None, ""))
                         for i, r in zip(index.tolist(), reasons.tolist(), strict=True)])

    def views(self) -> Iterator[tuple[str, PendingReason, float | None]]:
        """``(job_id, reason, planned_start_s)`` of every verdict, in order, without making
        Verdict objects of the runs: what a body that publishes reasons reads each cycle."""
        yield from ((v.job_id, v.reason, v.planned_start_s) for v in self._done)
        for _, ids, index, reasons in self._runs:
            yield from zip(map(ids.__getitem__, index.tolist()),
                           map(RUN_REASONS.__getitem__, reasons.tolist()), repeat(None))

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, i: int) -> Verdict: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Verdict]: ...

    def __getitem__(self, i: int | slice) -> Verdict | Sequence[Verdict]:
        self._settle()
        return self._done[i]

    def __setitem__(self, i: int, verdict: Verdict) -> None:
        self._settle()
        self._done[i] = verdict

    def __iter__(self) -> Iterator[Verdict]:
        self._settle()
        return iter(self._done)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Verdicts({list(self)!r})"


@dataclass(frozen=True)
class CycleResult:
    """Everything one cycle decided.

    ``pending`` is in priority order. ``factors`` maps every job considered (pending or
    started) to its priority factors; ``planned`` holds the reserved placement of jobs with a
    planned start (what the plan blocked in the profile).

    ``barrier`` — under a policy without backfill — is the job at the head of the queue when
    it had to wait for resources, as ``(job id, nodes, GPUs per node)``: every job ahead of
    it started, and nobody behind it was tried. A body may rely on it: while that job still
    leads the queue and fewer than ``nodes`` nodes have ``GPUs per node`` free, the next
    cycle starts nothing either.
    """

    now: float
    policy: str
    starts: tuple[Start, ...]
    preemptions: tuple[Preemption, ...]
    pending: Sequence[Verdict]
    factors: Mapping[str, PriorityFactors]
    planned: Mapping[str, Placement]
    barrier: tuple[str, int, int] | None = None
    #: gefion.core.carry.PlanCarry, for the body to pass to its next cycle (see run_cycle)
    carry: Any = field(default=None, repr=False, compare=False)

    def views(self) -> Iterator[tuple[str, PendingReason, float | None]]:
        """``(job_id, reason, planned_start_s)`` of each pending job, in priority order."""
        pending = self.pending
        if isinstance(pending, Verdicts):
            return pending.views()
        return ((v.job_id, v.reason, v.planned_start_s) for v in pending)

    def verdict(self, job_id: str) -> Verdict | None:
        for v in self.pending:
            if v.job_id == job_id:
                return v
        return None

    def started_ids(self) -> list[str]:
        return [s.job_id for s in self.starts]

    def __iter__(self) -> Iterator[Start]:
        return iter(self.starts)

    def to_json(self) -> dict[str, object]:
        """The stable JSON contract of ``gefion plan --json`` (fields may be added)."""
        return {
            "now": self.now,
            "policy": self.policy,
            "started": [{"id": s.job_id, "nodes": s.placement.as_dict(),
                         "backfilled": s.backfilled} for s in self.starts],
            "preempted": [{"id": p.job_id, "grace_s": p.grace_s, "for": p.for_job,
                           "requeue": p.requeue} for p in self.preemptions],
            "pending": [{"id": v.job_id, "reason": v.reason.value,
                         "planned_start": v.planned_start_s, "detail": v.detail}
                        for v in self.pending],
        }
