"""Column view of a snapshot's pending jobs, for the cycle's hot loops.

A cycle over 10,000 pending jobs cannot afford an attribute walk per job per question, so
the static facts of each pending job are laid out once as numpy columns in snapshot order:
shape, time limit, submit time, and indices into small tables of projects, (project, user)
pairs and QOS names. ``plain`` marks jobs with nothing special about them (a valid shape,
not held, no dependency, no reservation) — those can be decided in bulk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gefion.core.snapshot import PendingJob, Snapshot

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PendingColumns:
    ids: list[str]
    submit_s: FloatArray
    gpus: IntArray  # as asked (JobSpec.gpus)
    gpus_per_node: IntArray  # resolved shape; 0 where the shape is invalid
    nodes: IntArray
    limit_s: IntArray
    plain: BoolArray
    project: IntArray  # index into ``projects``
    pair: IntArray  # index into ``pairs``
    qos: IntArray  # index into ``qos_names``
    projects: list[str]
    pairs: list[tuple[str, str]]
    qos_names: list[str]


#: What a pending job contributes to the columns: numbers, then (project, user, QOS).
Row = tuple[tuple[float, int, int, int, int, bool], tuple[str, str, str]]


def pending_row(p: PendingJob) -> Row:
    """The static facts of one pending job; the snapshot builder keeps these per job."""
    spec, shape = p.spec, p.shape
    plain = shape is not None and not p.held and not spec.depends_on \
        and spec.reservation is None
    return ((p.submit_s, spec.gpus, shape.gpus_per_node if shape else 0,
             shape.nodes if shape else 0, spec.time_limit_s, plain),
            (spec.project, spec.user, spec.qos))


def pending_columns(snapshot: Snapshot, rows: list[Row] | None = None) -> PendingColumns:
    """The columns of ``snapshot.pending`` (computed once per snapshot, then cached).

    ``rows`` (from :func:`pending_row`, in snapshot order) spares recomputing them.
    """
    cached: PendingColumns | None = snapshot.__dict__.get("_columns")
    if cached is not None:
        return cached
    if rows is None:
        rows = [pending_row(p) for p in snapshot.pending]
    n = len(rows)
    projects: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    qos: dict[str, int] = {}
    project = [projects.setdefault(c[0], len(projects)) for _, c in rows]
    pair = [pairs.setdefault((c[0], c[1]), len(pairs)) for _, c in rows]
    qos_i = [qos.setdefault(c[2], len(qos)) for _, c in rows]
    table = np.array([r for r, _ in rows], dtype=np.float64).reshape(n, 6)
    ints = table[:, 1:].astype(np.int64)
    columns = PendingColumns(
        ids=[p.id for p in snapshot.pending], submit_s=table[:, 0].copy(),
        gpus=ints[:, 0].copy(), gpus_per_node=ints[:, 1].copy(), nodes=ints[:, 2].copy(),
        limit_s=ints[:, 3].copy(), plain=ints[:, 4].astype(np.bool_),
        project=np.asarray(project, dtype=np.int64), pair=np.asarray(pair, dtype=np.int64),
        qos=np.asarray(qos_i, dtype=np.int64),
        projects=list(projects), pairs=list(pairs), qos_names=list(qos))
    object.__setattr__(snapshot, "_columns", columns)
    return columns
