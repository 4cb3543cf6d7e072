"""What sensitive projects cost: the same run with and without ``--sensitive P1,P2``.

::

    cost = sensitive_cost(RunOptions(trace="itp-elasticflow/cluster03",
                                     sensitive=("proj01", "proj02")))

Two twin runs of the same options — the *baseline* without the ``sensitive`` list (a
tenancy file's own sensitive flags stay in both), and the run *with* it — in two worker
processes (as ``compare``'s cells). For each, the job statistics of all jobs, of the listed
projects' jobs and of the others (:func:`gefion.twin.metrics.group_stats`), GPU allocation
and fragmentation; :func:`cost_rows` sets them side by side with the change.
Deterministic: the same options give the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gefion.core.errors import InputError
from gefion.twin.run import RunOptions, run_twin

#: ``(row label, group, key, kind)``: the rows of the cost table; kind ``s`` (seconds)
#: or ``f`` (a fraction of the cluster).
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("all jobs: avg JCT", "all", "avg_jct_s", "s"),
    ("all jobs: avg wait", "all", "avg_wait_s", "s"),
    ("all jobs: p99 wait", "all", "p99_wait_s", "s"),
    ("sensitive projects: avg JCT", "jobs", "avg_jct_s", "s"),
    ("sensitive projects: avg wait", "jobs", "avg_wait_s", "s"),
    ("sensitive projects: p99 wait", "jobs", "p99_wait_s", "s"),
    ("other projects: avg JCT", "other_jobs", "avg_jct_s", "s"),
    ("other projects: avg wait", "other_jobs", "avg_wait_s", "s"),
    ("other projects: p99 wait", "other_jobs", "p99_wait_s", "s"),
    ("GPU allocation", "all", "gpu_allocation", "f"),
    ("fragmentation", "all", "fragmentation", "f"),
)


@dataclass(frozen=True, slots=True)
class Variant:
    """One of the two runs: its options, its summary and the statistics of the groups
    ``all`` (the summary's top level), ``jobs`` (the listed projects) and ``other_jobs``."""

    options: RunOptions
    summary: dict[str, Any]
    groups: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SensitiveCost:
    projects: tuple[str, ...]
    baseline: Variant
    sensitive: Variant

    def to_json(self) -> dict[str, Any]:
        return {"projects": list(self.projects),
                "rows": [{"metric": label, "without": a, "with": b, "change": c}
                         for label, a, b, c in cost_values(self)],
                "baseline": self.baseline.summary, "with_sensitive": self.sensitive.summary}


def run_variant(options: RunOptions, projects: tuple[str, ...]) -> Variant:
    """One run (top-level, so a worker process can import it)."""
    from gefion.twin.metrics import group_stats

    outcome = run_twin(options)
    groups = group_stats(outcome.result, projects)
    return Variant(options, outcome.summary, {"all": outcome.summary, **groups})


def variants(options: RunOptions) -> tuple[RunOptions, RunOptions]:
    """(baseline, with sensitive): ``options`` without and with its ``sensitive`` list."""
    if not options.sensitive:
        raise InputError("name the projects to mark sensitive", field="sensitive")
    return options.with_(sensitive=()), options


def sensitive_cost(options: RunOptions, *, workers: int | None = None) -> SensitiveCost:
    """Run both variants (in parallel unless ``workers`` is 1) and pair them."""
    cells = variants(options)
    projects = options.sensitive
    if workers == 1:
        done = [run_variant(cell, projects) for cell in cells]
    else:
        from concurrent.futures import ProcessPoolExecutor

        from gefion.twin.compare import _context

        with ProcessPoolExecutor(max_workers=2, mp_context=_context()) as pool:
            futures = [pool.submit(run_variant, cell, projects) for cell in cells]
            done = [future.result() for future in futures]
    return SensitiveCost(projects, done[0], done[1])


def _change(a: float | None, b: float | None, kind: str) -> float | None:
    """Seconds: relative change (0.25 = 25 % more); fractions: the difference."""
    if a is None or b is None:
        return None
    if kind == "f":
        return round(b - a, 6)
    return round(b / a - 1.0, 6) if a > 0 else None


def cost_values(cost: SensitiveCost) -> list[tuple[str, float | None, float | None,
                                                   float | None]]:
    """``(metric, without, with, change)`` per row of :data:`ROWS`."""
    out = []
    for label, group, key, kind in ROWS:
        a = cost.baseline.groups[group].get(key)
        b = cost.sensitive.groups[group].get(key)
        out.append((label, a, b, _change(a, b, kind)))
    return out


def cost_rows(cost: SensitiveCost) -> list[tuple[str, str, str, str]]:
    """The cost table as text: metric, without, with, change."""
    from gefion.twin.report import fmt_fraction, fmt_short

    kinds = {label: kind for label, _, _, kind in ROWS}
    rows = []
    for label, a, b, c in cost_values(cost):
        if kinds[label] == "f":
            change = "-" if c is None else f"{100 * c:+.1f} pts"
            rows.append((label, fmt_fraction(a), fmt_fraction(b), change))
        else:
            change = "-" if c is None else f"{100 * c:+.1f}%"
            rows.append((label, fmt_short(a), fmt_short(b), change))
    return rows


def job_counts(cost: SensitiveCost) -> Sequence[int]:
    """Jobs of the listed projects and of the others (the same in both runs)."""
    return (int(cost.baseline.groups["jobs"]["jobs"]),
            int(cost.baseline.groups["other_jobs"]["jobs"]))
