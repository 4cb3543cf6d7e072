"""The summary of a twin run: the documented JSON other tools script against.

``summarize(result)`` returns plain JSON-serialisable data (definitions in docs/twin.md):

* per job: JCT = ``end − submit``, wait = ``first_start − submit`` (seconds); bounded
  slowdown ``max(1, JCT / max(runtime, 10 s))``; averages and percentiles (numpy's
  linear interpolation) over every job that ended;
* over the run: ``makespan_s`` (the last end; time 0 is the first submit),
  ``gpu_allocation`` = allocated GPU-seconds / (total GPUs × makespan), ``fragmentation`` =
  stranded GPU-seconds / (total GPUs × makespan), ``energy_kwh`` = the cluster's energy
  over the makespan, idle power included;
* ``by_size``: the same statistics per job-size class (:data:`SIZE_CLASSES`), where
  ``gpu_allocation`` is the class's share of the cluster, ``makespan_s`` the last end of
  a job of the class and ``energy_kwh`` the energy charged to its jobs;
* ``per_project``: jobs, GPU-hours used, their share of all used GPU-hours, the
  entitlement from fair-share shares and share / entitlement, avg JCT, avg and p99 wait;
* ``sensitive`` (only when some project is sensitive): the job statistics of the sensitive
  projects' jobs and of the others' (:func:`group_stats`);
* ``grants`` (only when the run had grants or metered projects): burn-down per project
  (:mod:`gefion.twin.burn`).

Every float is rounded to :data:`DIGITS` decimals, so that the same result always dumps
(``json.dumps(..., sort_keys=True)``) to the same bytes. ``wall_s`` is left out on purpose.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

import numpy as np

from gefion.twin.result import JobRecord, SimResult

DIGITS = 6
#: Slowdown bound, seconds: jobs shorter than this count as this long.
BSLD_BOUND_S = 10.0
JOULES_PER_KWH = 3.6e6

#: Job-size classes by GPUs held: (name, lowest, highest) — inclusive bounds.
SIZE_CLASSES: tuple[tuple[str, int, float], ...] = (
    ("1", 0, 1), ("2-4", 2, 4), ("5-8", 5, 8), ("9-32", 9, 32), ("33-128", 33, 128),
    (">128", 129, float("inf")),
)


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), DIGITS)


def size_class(gpus: int) -> str:
    """The name of the size class of a job holding ``gpus`` GPUs (0-GPU jobs count as 1)."""
    for name, lo, hi in SIZE_CLASSES:
        if lo <= gpus <= hi:
            return name
    raise ValueError(f"no size class for {gpus} GPUs")  # pragma: no cover


class _Jobs:
    """The columns of job records (in the records' order) that the statistics read: made
    once per summary from the records' tuples, then taken apart by index."""

    __slots__ = ("end", "energy", "gpus", "preemptions", "run", "start", "submit")

    def __init__(self, submit: np.ndarray, start: np.ndarray, end: np.ndarray,
                 run: np.ndarray, gpus: np.ndarray, preemptions: np.ndarray,
                 energy: np.ndarray) -> None:
        self.submit, self.start, self.end, self.run = submit, start, end, run
        self.gpus, self.preemptions, self.energy = gpus, preemptions, energy

    @classmethod
    def of(cls, jobs: Sequence[JobRecord]) -> _Jobs:
        if not jobs:
            empty = np.zeros(0)
            return cls(empty, empty, empty, empty, empty, np.zeros(0, np.int64), empty)
        n, f = len(jobs), np.float64

        def column(field: str, dtype: type = f) -> np.ndarray:
            return np.fromiter(map(attrgetter(field), jobs), dtype, n)

        return cls(column("submit_s"), column("first_start_s"), column("end_s"),
                   column("runtime_s"), column("gpus"), column("preemptions", np.int64),
                   column("energy_j"))

    def take(self, index: np.ndarray) -> _Jobs:
        return _Jobs(self.submit[index], self.start[index], self.end[index],
                     self.run[index], self.gpus[index], self.preemptions[index],
                     self.energy[index])

    def __len__(self) -> int:
        return len(self.submit)


def _stats(jobs: _Jobs, total_gpus: int, span_s: float) -> dict[str, Any]:
    """Job statistics over ``jobs``; allocation is relative to ``total_gpus × span_s``."""
    n = len(jobs)
    out: dict[str, Any] = {"jobs": n}
    if n == 0:
        for key in ("avg_jct_s", "p50_jct_s", "p95_jct_s", "p99_jct_s", "avg_wait_s",
                    "p50_wait_s", "p95_wait_s", "p99_wait_s", "avg_bsld", "makespan_s"):
            out[key] = None
        out.update(gpu_allocation=0.0, gpu_hours=0.0, preemptions=0, energy_kwh=0.0)
        return out
    submit, end, run = jobs.submit, jobs.end, jobs.run
    jct, wait = end - submit, jobs.start - submit
    bsld = np.maximum(1.0, jct / np.maximum(run, BSLD_BOUND_S))
    p_jct = np.percentile(jct, [50, 95, 99])
    p_wait = np.percentile(wait, [50, 95, 99])
    gpu_s = float(np.dot(jobs.gpus, run))
    out.update(
        avg_jct_s=_r(jct.mean()), p50_jct_s=_r(p_jct[0]), p95_jct_s=_r(p_jct[1]),
        p99_jct_s=_r(p_jct[2]), avg_wait_s=_r(wait.mean()), p50_wait_s=_r(p_wait[0]),
        p95_wait_s=_r(p_wait[1]), p99_wait_s=_r(p_wait[2]), avg_bsld=_r(bsld.mean()),
        makespan_s=_r(end.max()),
        gpu_allocation=_r(gpu_s / (total_gpus * span_s)) if total_gpus and span_s > 0
        else 0.0,
        gpu_hours=_r(gpu_s / 3600.0), preemptions=int(jobs.preemptions.sum()),
        # in the records' order, one by one, as the sum of the records always was
        energy_kwh=_r(sum(jobs.energy.tolist()) / JOULES_PER_KWH))
    return out


def group_stats(result: SimResult, projects: Iterable[str]) -> dict[str, Any]:
    """Job statistics (as the summary's top level) of the jobs of ``projects``
    (``"jobs"``) and of all other jobs (``"other_jobs"``)."""
    names = frozenset(projects)
    inside = np.array([j.project in names for j in result.jobs], dtype=np.bool_)
    cols = _Jobs.of(result.jobs)
    span = result.makespan_s
    return {"projects": sorted(names),
            "jobs": _stats(cols.take(np.flatnonzero(inside)), result.total_gpus, span),
            "other_jobs": _stats(cols.take(np.flatnonzero(~inside)), result.total_gpus,
                                 span)}


def _waits(jobs: _Jobs) -> dict[str, Any]:
    n = len(jobs)
    if n == 0:
        return {"jobs": 0, "avg_jct_s": None, "avg_wait_s": None, "p99_wait_s": None}
    wait = jobs.start - jobs.submit
    jct = jobs.end - jobs.submit
    return {"jobs": n, "avg_jct_s": _r(jct.mean()), "avg_wait_s": _r(wait.mean()),
            "p99_wait_s": _r(np.percentile(wait, 99))}


def _per_project(result: SimResult, cols: _Jobs) -> dict[str, dict[str, Any]]:
    used: dict[str, float] = {}
    rows: dict[str, list[int]] = {}
    for k, j in enumerate(result.jobs):
        used[j.project] = used.get(j.project, 0.0) + j.gpus * j.runtime_s / 3600.0
        rows.setdefault(j.project, []).append(k)
    total = sum(used.values())
    shares = dict(result.project_shares)
    for name in used:
        shares.setdefault(name, 1.0)
    total_shares = sum(shares.values())
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(shares):
        share = used.get(name, 0.0) / total if total > 0 else 0.0
        entitled = shares[name] / total_shares if total_shares > 0 else 0.0
        mine = cols.take(np.array(rows.get(name, []), dtype=np.intp))
        out[name] = {**_waits(mine),
                     "gpu_hours": _r(used.get(name, 0.0)), "share": _r(share),
                     "entitlement": _r(entitled),
                     "share_over_entitlement": _r(share / entitled) if entitled > 0
                     else None}
    return out


def summarize(result: SimResult) -> dict[str, Any]:
    """The summary of ``result`` (see the module docstring and docs/twin.md)."""
    span = result.makespan_s
    cap = result.total_gpus * span
    cols = _Jobs.of(result.jobs)
    overall = _stats(cols, result.total_gpus, span)
    lowest = np.array([lo for _, lo, _ in SIZE_CLASSES], dtype=np.float64)
    of_class = np.searchsorted(lowest, np.maximum(cols.gpus, 1.0), side="right") - 1
    summary: dict[str, Any] = {
        "trace": result.trace, "cluster": result.cluster, "policy": result.policy,
        "seed": result.seed, "load": _r(result.load), "total_gpus": result.total_gpus,
        **overall,
        "makespan_s": _r(span),
        "gpu_allocation": _r(result.allocated_gpu_s / cap) if cap > 0 else 0.0,
        "fragmentation": _r(result.stranded_gpu_s / cap) if cap > 0 else 0.0,
        "preemptions": result.preemptions,
        "energy_kwh": _r(result.energy_j / JOULES_PER_KWH),
        "job_energy_kwh": overall["energy_kwh"],
        "states": dict(sorted(Counter(j.state for j in result.jobs).items())),
        "dropped": dict(sorted(result.dropped.items())),
        "rounded_up": result.rounded_up,
        "node_failures": result.node_failures,
        "failed_runs": result.failed_runs,
        "cycles": result.cycles,
        "events": result.events,
        "by_size": {name: _stats(cols.take(np.flatnonzero(of_class == k)),
                                 result.total_gpus, span)
                    for k, (name, _, _) in enumerate(SIZE_CLASSES)},
        "per_project": _per_project(result, cols),
    }
    if result.sensitive:
        summary["sensitive"] = group_stats(result, result.sensitive)
    if result.grants or result.grant_charges:
        from gefion.twin.burn import grants_section

        summary["grants"] = grants_section(result)
    return summary
