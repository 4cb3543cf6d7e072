"""Column views of a snapshot's pending and running jobs, for the cycle's hot loops.

A cycle over 10,000 pending jobs cannot afford an attribute walk per job per question, so
the static facts of each job are laid out as numpy columns in snapshot order. Pending: shape,
time limit, submit time, attained service, and indices into small tables of projects,
(project, user) pairs and QOS names; ``plain`` marks jobs with nothing special about them
(a valid shape, not held, no dependency, no reservation) — those can be decided in bulk.
Running: start, expected end, GPUs, attained service, preemptible, and the GPU holds
(node, GPUs, expected end) of every running job.

The snapshot builder (:mod:`gefion.core.builder`) keeps these between cycles and attaches
them to each snapshot; for a snapshot made by hand they are computed once, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from gefion.core.jobs import TopologyConstraint
from gefion.core.snapshot import Snapshot

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Tables:
    """Names behind the index columns; ``cache`` holds arrays derived from them (per-name
    factors) for whoever computes them, keyed by what they were computed from."""

    projects: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    qos_names: tuple[str, ...]
    cache: dict[Any, Any] = field(default_factory=dict, compare=False)


class Interned:
    """Append-only name tables: an index, once given, keeps its meaning."""

    def __init__(self) -> None:
        self._projects: dict[str, int] = {}
        self._pairs: dict[tuple[str, str], int] = {}
        self._qos: dict[str, int] = {}
        self._frozen: Tables | None = None

    def _get(self, table: dict[Any, int], key: Any) -> int:
        i = table.get(key)
        if i is None:
            i = table[key] = len(table)
            self._frozen = None
        return i

    def project(self, name: str) -> int:
        return self._get(self._projects, name)

    def pair(self, project: str, user: str) -> int:
        return self._get(self._pairs, (project, user))

    def qos(self, name: str) -> int:
        return self._get(self._qos, name)

    def frozen(self) -> Tables:
        """The tables as they are now (the same object until a name is added)."""
        if self._frozen is None:
            self._frozen = Tables(tuple(self._projects), tuple(self._pairs), tuple(self._qos))
        return self._frozen


@dataclass(frozen=True)
class PendingColumns:
    ids: list[str]
    submit_s: FloatArray
    service_gpu_s: FloatArray
    gpus: IntArray  # as asked (JobSpec.gpus)
    gpus_per_node: IntArray  # resolved shape; 0 where the shape is invalid
    nodes: IntArray
    limit_s: IntArray
    plain: BoolArray
    held: BoolArray  # held by a user or operator, with a valid shape
    deps: BoolArray  # has dependencies
    one_unit: BoolArray  # must run within one scalable unit (same_su required)
    project: IntArray  # index into ``projects``
    pair: IntArray  # index into ``pairs``
    qos: IntArray  # index into ``qos_names``
    tables: Tables

    @property
    def projects(self) -> tuple[str, ...]:
        return self.tables.projects

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        return self.tables.pairs

    @property
    def qos_names(self) -> tuple[str, ...]:
        return self.tables.qos_names


@dataclass(frozen=True)
class RunningColumns:
    """Per running job (snapshot order): ``start_s``, ``expected_end_s``, ``gpus``,
    ``service_gpu_s`` (before this run), ``preemptible``; and per GPU hold (one per node
    of each job): ``hold_nodes`` (node index), ``hold_gpus``, ``hold_end_s``."""

    start_s: FloatArray
    expected_end_s: FloatArray
    service_gpu_s: FloatArray
    gpus: IntArray
    preemptible: BoolArray
    hold_nodes: IntArray
    hold_gpus: IntArray
    hold_end_s: FloatArray


def pending_columns(snapshot: Snapshot) -> PendingColumns:
    """The columns of ``snapshot.pending`` (made once per snapshot, then cached)."""
    cached: PendingColumns | None = snapshot.__dict__.get("_columns")
    if cached is not None:
        return cached
    t = Interned()
    rows, idx, plain, held, deps, one_unit = [], [], [], [], [], []
    for p in snapshot.pending:
        spec, shape = p.spec, p.shape
        rows.append((p.submit_s, p.service_gpu_s, spec.gpus,
                     shape.gpus_per_node if shape else 0, shape.nodes if shape else 0,
                     spec.time_limit_s))
        idx.append((t.project(spec.project), t.pair(spec.project, spec.user), t.qos(spec.qos)))
        plain.append(shape is not None and not p.held and not spec.depends_on
                     and spec.reservation is None and spec.array_limit is None)
        held.append(shape is not None and p.held)
        deps.append(bool(spec.depends_on))
        one_unit.append(spec.same_su is TopologyConstraint.REQUIRED)
    n = len(rows)
    f = np.array(rows, dtype=np.float64).reshape(n, 6)
    i = np.array(idx, dtype=np.int64).reshape(n, 3)
    ints = f[:, 2:].astype(np.int64)
    columns = PendingColumns(
        ids=[p.id for p in snapshot.pending], submit_s=f[:, 0], service_gpu_s=f[:, 1],
        gpus=ints[:, 0], gpus_per_node=ints[:, 1], nodes=ints[:, 2], limit_s=ints[:, 3],
        plain=np.array(plain, dtype=np.bool_), held=np.array(held, dtype=np.bool_),
        deps=np.array(deps, dtype=np.bool_), one_unit=np.array(one_unit, dtype=np.bool_),
        project=i[:, 0], pair=i[:, 1], qos=i[:, 2],
        tables=t.frozen())
    object.__setattr__(snapshot, "_columns", columns)
    return columns


def running_columns(snapshot: Snapshot) -> RunningColumns:
    """The columns of ``snapshot.running`` (made once per snapshot, then cached)."""
    cached: RunningColumns | None = snapshot.__dict__.get("_running_columns")
    if cached is not None:
        return cached
    lent = _lent(snapshot)
    if lent is not None:
        made: RunningColumns = lent[0]()
        object.__setattr__(snapshot, "_running_columns", made)
        return made
    running = snapshot.running
    f = np.array([(r.start_s, r.expected_end_s, r.service_gpu_s) for r in running],
                 dtype=np.float64).reshape(len(running), 3)
    holds = [(n, g, r.expected_end_s) for r in running for n, g in r.alloc]
    h = np.array(holds, dtype=np.float64).reshape(len(holds), 3)
    columns = RunningColumns(
        start_s=f[:, 0], expected_end_s=f[:, 1], service_gpu_s=f[:, 2],
        gpus=np.array([r.gpus for r in running], dtype=np.int64),
        preemptible=np.array([r.preemptible for r in running], dtype=np.bool_),
        hold_nodes=h[:, 0].astype(np.int64), hold_gpus=h[:, 1].astype(np.int64),
        hold_end_s=h[:, 2].copy())
    object.__setattr__(snapshot, "_running_columns", columns)
    return columns


def any_preemptible(snapshot: Snapshot) -> bool:
    """Whether any running job may be preempted: the builder's count while current (no
    columns made for a question most cycles ask), else from the columns."""
    lent = _lent(snapshot)
    if lent is not None:
        return bool(lent[3] > 0)
    return bool(running_columns(snapshot).preemptible.any())


def _lent(snapshot: Snapshot) -> tuple[Any, Any, int, int] | None:
    """``(make columns, generation cell, generation, preemptible count)`` the builder left
    on ``snapshot``, while the builder has not changed since; else None."""
    lent = snapshot.__dict__.get("_running_columns_of")
    return lent if lent is not None and lent[1][0] == lent[2] else None
