"""Multifactor priority, like Slurm's ``priority/multifactor``, with every factor visible.

priority = w_age·age + w_fairshare·fairshare + w_qos·qos + w_size·size + w_grant·grant

Each factor is normalised to 0..1:

* ``age``: time waiting since submit, ``min(1, wait / max_age_s)``;
* ``fairshare``: the project/user factor of the decayed usage ledger (see docs/fairshare.md);
* ``qos``: the job's QOS priority over the largest QOS priority;
* ``size``: GPUs asked over the cluster's GPUs (large jobs gain, so they are not starved);
* ``grant``: 1 when the project is unmetered or has grant hours left, else 0 (such a job
  can only run in a QOS that charges nothing).

**Starving jobs** (as PBS Professional's ``max_starve``): a job that has waited
``starve_after_s`` or longer (5 days by default; None: never) ranks above every job that
has not. A large gang — a job over ``gang_min_nodes`` nodes or more (8 by default: 64
GPUs on DGX nodes) — starves sooner, after ``gang_starve_after_s`` (3 days by default;
None: as other jobs): it cannot slip into the holes that backfill leaves, and once it
ranks first its reservation still has to drain whole nodes. (Measured on the ITP trace
at load 1.5: counting every multi-node job as a gang clogs the planned set with small
gangs and doubles the small jobs' waits; see docs/scheduling.md.) Starving jobs rank
among themselves by how long they have starved (their wait past their threshold); the
priority of one is the sum of the weights plus those days, so the order shows in the
number. Fair share decides who goes first while waits are short; it cannot hold a job
back for ever, which, at a sustained overload, it otherwise would.

Computed column-wise with numpy: a cycle over 10,000 pending jobs must stay cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from gefion.core.columns import PendingColumns, pending_columns
from gefion.core.decisions import PriorityFactors
from gefion.core.errors import PolicyError
from gefion.core.snapshot import Snapshot
from gefion.core.tenancy import QOS, qos_named
from gefion.core.usage import FairShare

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Weights:
    age: float = 1_000.0
    fairshare: float = 10_000.0
    qos: float = 5_000.0
    size: float = 500.0
    grant: float = 1_000.0
    max_age_s: float = 7 * 86_400.0
    starve_after_s: float | None = 5 * 86_400.0
    gang_starve_after_s: float | None = 3 * 86_400.0
    gang_min_nodes: int = 8

    def __post_init__(self) -> None:
        for name in ("age", "fairshare", "qos", "size", "grant", "max_age_s",
                     "starve_after_s", "gang_starve_after_s"):
            value = getattr(self, name)
            nullable = name.endswith("starve_after_s")
            if value is None and nullable:
                continue
            positive = name == "max_age_s"
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not math.isfinite(value) or value < 0 or (positive and value == 0):
                raise PolicyError(f"weights.{name} must be a finite number "
                                  f"{'> 0' if positive else '>= 0'}"
                                  f"{' or null' if nullable else ''}, got {value!r}")
        nodes = self.gang_min_nodes
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
            raise PolicyError(f"weights.gang_min_nodes must be a whole number >= 1, got "
                              f"{nodes!r}")

    @property
    def ceiling(self) -> float:
        """The highest priority a job that is not starving can have."""
        return self.age + self.fairshare + self.qos + self.size + self.grant


#: The fields of :class:`PriorityFactors`, as published (:func:`rounded_factors`).
FACTOR_NAMES = ("priority", "age", "fairshare", "qos", "size", "grant")


def factor_dict(f: PriorityFactors, digits: int = 6) -> dict[str, float]:
    """One job's factors as ``{"priority": …, "age": …, …}``, rounded to ``digits``."""
    return {name: round(getattr(f, name), digits) for name in FACTOR_NAMES}


def rounded_factors(factors: Mapping[str, PriorityFactors], job_ids: Sequence[str],
                    digits: int = 6) -> list[dict[str, float] | None]:
    """:func:`factor_dict` of each of ``job_ids`` (None for a job without factors): made a
    column at a time from a cycle's :class:`PriorityTable`, a job at a time otherwise."""
    if isinstance(factors, PriorityTable):
        return factors.rounded(job_ids, digits)
    return [None if (f := factors.get(job_id)) is None else factor_dict(f, digits)
            for job_id in job_ids]


class PriorityTable(Mapping[str, PriorityFactors]):
    """Priority and factor columns for the pending jobs of a snapshot, in snapshot order.

    Behaves as a read-only mapping job id → :class:`PriorityFactors`, built lazily so that a
    cycle over many jobs does not create an object per job. ``in_snapshot_order`` promises
    that priorities do not increase along the snapshot's order (submit time, then id), so
    the cycle need not sort.
    """

    def __init__(self, ids: Sequence[str], priority: FloatArray,
                 columns: Mapping[str, FloatArray] | Callable[[], Mapping[str, FloatArray]],
                 *, in_snapshot_order: bool = False) -> None:
        self.ids = ids
        self.priority = priority
        self._columns = columns  # or how to make them, when a factor is first read
        self.in_snapshot_order = in_snapshot_order
        self._pos: dict[str, int] | None = None

    @property
    def columns(self) -> Mapping[str, FloatArray]:
        if callable(self._columns):
            self._columns = self._columns()
        return self._columns

    def _positions(self) -> dict[str, int]:
        if self._pos is None:
            self._pos = {job_id: i for i, job_id in enumerate(self.ids)}
        return self._pos

    def rounded(self, job_ids: Sequence[str], digits: int = 6
                ) -> list[dict[str, float] | None]:
        """The factors of ``job_ids`` as ``{"priority": …, "age": …, …}`` rounded to
        ``digits`` (None for a job not in the table): what a body publishes, made a column
        at a time rather than an object per job."""
        pos = self._positions()
        at = [pos.get(job_id, -1) for job_id in job_ids]
        where = np.array([i for i in at if i >= 0], dtype=np.intp)
        c = self.columns
        values = zip(*(np.round(col[where], digits).tolist() for col in (
            self.priority, c["age"], c["fairshare"], c["qos"], c["size"], c["grant"])),
            strict=True)
        names = FACTOR_NAMES
        return [None if i < 0 else dict(zip(names, next(values), strict=True)) for i in at]

    def __getitem__(self, job_id: str) -> PriorityFactors:
        i = self._positions()[job_id]
        c = self.columns
        return PriorityFactors(float(self.priority[i]), float(c["age"][i]),
                               float(c["fairshare"][i]), float(c["qos"][i]),
                               float(c["size"][i]), float(c["grant"][i]))

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


def _name_values(cols: PendingColumns, qos: Mapping[str, QOS],
                 fs: FairShare) -> tuple[FloatArray, FloatArray]:
    """Per QOS name and per (project, user) pair of the columns' name tables: the QOS
    factor and the fair-share factor. They change only with the QOS table and the
    fair-share table (every few minutes), not with every cycle: kept with the name
    tables, keyed by the tables they came from."""
    cache = cols.tables.cache
    cached = cache.get("qos")
    if cached is not None and cached[0] is qos:
        qos_value = cached[1]
    else:
        top_qos = max((q.priority for q in qos.values()), default=0.0) or 1.0
        normal = qos_named(qos, "normal").priority
        qos_value = np.array([getattr(qos.get(q), "priority", normal) / top_qos
                              for q in cols.qos_names], dtype=np.float64)
        cache["qos"] = (qos, qos_value)
    cached = cache.get("fair")
    if cached is not None and cached[0] is fs:
        fair = cached[1]
    else:
        fair = np.array([fs.factor(p, u) for p, u in cols.pairs], dtype=np.float64)
        cache["fair"] = (fs, fair)
    return qos_value, fair


def _grant_column(cols: PendingColumns, left: Mapping[str, float]) -> FloatArray | None:
    """1 where the job's project may run (unmetered or hours left), else 0; None when no
    project has grants (every job may run)."""
    if not left:
        return None
    grant = np.array([0.0 if left.get(p, 1.0) <= 0 else 1.0 for p in cols.projects],
                     dtype=np.float64)
    return grant[cols.project] if len(grant) else np.zeros(0)


def factor_columns(snapshot: Snapshot, now: float, weights: Weights) -> dict[str, FloatArray]:
    """The normalised factor columns (age, fairshare, qos, size, grant) of pending jobs,
    plus ``submit`` (seconds) for policies that order by it."""
    return _factor_columns(pending_columns(snapshot), snapshot.qos, snapshot.fairshare,
                           snapshot.grant_left_gpu_s, snapshot.cluster.total_gpus, now,
                           weights)


def _factor_columns(cols: PendingColumns, qos: Mapping[str, QOS], fs: FairShare,
                    left: Mapping[str, float], total_gpus: int, now: float,
                    weights: Weights) -> dict[str, FloatArray]:
    qos_value, fair = _name_values(cols, qos, fs)
    grant_col = _grant_column(cols, left)
    return {"age": _age(now - cols.submit_s, weights),
            "fairshare": fair[cols.pair] if len(fair) else np.zeros(0),
            "qos": qos_value[cols.qos] if len(qos_value) else np.zeros(0),
            "size": _size(cols, total_gpus),
            "grant": np.ones(len(cols.ids)) if grant_col is None else grant_col,
            "submit": cols.submit_s}


def _age(waited: FloatArray, weights: Weights) -> FloatArray:
    """The age factor of jobs that waited ``waited`` seconds: ``min(1, wait / max_age)``."""
    age = waited / weights.max_age_s
    np.maximum(age, 0.0, out=age)  # np.clip, without its overhead
    np.minimum(age, 1.0, out=age)
    return age


def _size(cols: PendingColumns, total_gpus: int) -> FloatArray:
    """The size factor: GPUs asked over the cluster's GPUs, at most 1."""
    size: FloatArray = np.minimum(cols.gpus / max(1, total_gpus), 1.0)
    return size


def _weighted(cols: PendingColumns, qos: Mapping[str, QOS], fs: FairShare,
              weights: Weights) -> tuple[FloatArray, FloatArray]:
    """The QOS and fair-share values of :func:`_name_values` times their weights, kept
    with them (the same products :func:`factor_columns`' columns would give)."""
    cache = cols.tables.cache
    qos_value, fair = _name_values(cols, qos, fs)
    cached = cache.get("weighted")
    if cached is not None and cached[0] is qos_value and cached[1] is fair and \
            cached[2] == (weights.qos, weights.fairshare):
        return cached[3], cached[4]
    qos_w, fair_w = weights.qos * qos_value, weights.fairshare * fair
    cache["weighted"] = (qos_value, fair, (weights.qos, weights.fairshare), qos_w, fair_w)
    return qos_w, fair_w


def multifactor(snapshot: Snapshot, now: float, weights: Weights) -> PriorityTable:
    """The multifactor priority of every pending job (the module's formula). The sum is
    taken in the formula's order, term by term, so it is the same number as from
    :func:`factor_columns`' columns; those are made only if someone reads them (from
    what they need, not the snapshot, which holds the table: no reference cycle)."""
    cols = pending_columns(snapshot)
    qos, fs, left = snapshot.qos, snapshot.fairshare, snapshot.grant_left_gpu_s
    total = snapshot.cluster.total_gpus
    qos_w, fair_w = _weighted(cols, qos, fs, weights)
    waited = now - cols.submit_s
    priority = weights.age * _age(waited, weights)
    priority += fair_w[cols.pair]
    priority += qos_w[cols.qos]
    size = _size(cols, total)
    size *= weights.size
    priority += size
    grant = _grant_column(cols, left)
    if grant is None:
        priority += weights.grant * 1.0  # every job's grant factor is 1
    else:
        priority += weights.grant * grant
    overdue = _starved_s(cols.nodes, waited, weights)
    if overdue is not None:
        starving = overdue >= 0.0
        if np.count_nonzero(starving):
            priority = np.where(starving, weights.ceiling + overdue / 86_400.0, priority)
    return PriorityTable(cols.ids, priority, partial(
        _table_columns, cols, qos, fs, left, total, now, weights))


def _table_columns(*args: Any) -> dict[str, FloatArray]:
    made = _factor_columns(*args)
    del made["submit"]
    return made


def _starved_s(nodes: npt.NDArray[np.int64], waited: FloatArray,
               weights: Weights) -> FloatArray | None:
    """How long each job has starved (negative: not yet); None when nobody starves."""
    solo, gang = weights.starve_after_s, weights.gang_starve_after_s
    gang = solo if gang is None else gang
    if gang is None or not len(waited):  # solo is None too
        return None
    if waited.max() < (gang if solo is None else min(solo, gang)):
        return None  # nobody has waited as long as the shortest threshold
    if solo == gang:
        return waited - gang
    threshold = np.where(nodes >= weights.gang_min_nodes, gang,
                         math.inf if solo is None else solo)
    return waited - threshold
