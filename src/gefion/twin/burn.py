"""The ``grants`` section of a twin summary: grant burn-down per project.

For every project with grants (or metered), from the run's grants and its time-stamped
charges (:attr:`gefion.twin.result.SimResult.grant_charges`):

* ``granted_gpu_hours``: the GPU-hours of its grants; ``funders``: who gave them;
* ``charged_gpu_hours``: what its runs charged (GPU-hours × QOS usage factor), a tenancy
  file's ``usage`` included;
* ``left_gpu_hours``: what is left at the end of the run (makespan) in its grants active
  then;
* ``unfunded_gpu_hours``: charges no active grant could take — runs that started while
  hours were left and ran on after they were gone, or use outside every grant's window;
* ``exhausted_at_s``: the first charge after which its active grants had nothing left
  (``None``: never);
* ``held_jobs``: its jobs the core held at least once for GRANT_EXHAUSTED;
* ``burn_down``: ``[time_s, gpu_hours_left]`` points of
  :func:`gefion.core.grants.burn_down` up to the makespan, at most :data:`MAX_POINTS`
  (evenly thinned; the first, the exhaustion and the last are always kept).

Charges are spent as the core spends them: earliest-expiring active grant first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from gefion.core.grants import SECONDS_PER_HOUR, burn_down, spend
from gefion.core.tenancy import Grant
from gefion.twin.result import SimResult

MAX_POINTS = 100
#: GPU-hours below which a balance counts as spent (float dust from pro-rata charges).
EPSILON_GPU_H = 1e-9


def unfunded_gpu_s(grants: Iterable[Grant], charges: Iterable[tuple[float, float]]) -> float:
    """GPU-seconds of ``charges`` that no grant active at their time could take."""
    pool = sorted(grants, key=lambda g: (g.valid_to_s, g.id))
    left = [g.gpu_s for g in pool]
    return sum(spend(pool, left, t, due) for t, due in sorted(charges))


def _thin(points: Sequence[tuple[float, float]], keep: int | None) -> list[list[float]]:
    picked: Iterable[int] = range(len(points))
    if len(points) > MAX_POINTS:
        step = (len(points) - 1) / (MAX_POINTS - 2)
        picked = sorted({0, len(points) - 1, *(round(k * step) for k in range(MAX_POINTS - 1)),
                         *(() if keep is None else (keep,))})
    return [[round(points[i][0], 6), round(points[i][1], 6)] for i in picked]


def project_burn(grants: Sequence[Grant], charges: Sequence[tuple[float, float]],
                 end_s: float, held_jobs: int) -> dict[str, Any]:
    """The section's entry for one project (see the module docstring); ``end_s`` is the
    run's makespan."""
    charge_times = {t for t, gpu_s in charges if gpu_s > 0}
    points = [p for p in burn_down(grants, [*charges, (end_s, 0.0)]) if p[0] <= end_s]
    exhausted: float | None = None
    keep: int | None = None
    for k, (t, hours) in enumerate(points):
        if t in charge_times and hours <= EPSILON_GPU_H:
            exhausted, keep = t, k
            break
    return {
        "funders": sorted({g.funder for g in grants if g.funder}),
        "granted_gpu_hours": round(math.fsum(g.gpu_hours for g in grants), 6),
        "charged_gpu_hours": round(math.fsum(c for _, c in charges) / SECONDS_PER_HOUR, 6),
        "left_gpu_hours": round(points[-1][1], 6) if points else 0.0,
        "unfunded_gpu_hours": round(unfunded_gpu_s(grants, charges) / SECONDS_PER_HOUR, 6),
        "exhausted_at_s": None if exhausted is None else round(exhausted, 6),
        "held_jobs": held_jobs,
        "burn_down": _thin(points, keep),
    }


def grants_section(result: SimResult) -> dict[str, dict[str, Any]]:
    """Per project with grants or charges kept, its entry (``{}`` for a run without)."""
    by_project: dict[str, list[Grant]] = {}
    for g in result.grants:
        by_project.setdefault(g.project, []).append(g)
    names = sorted(set(by_project) | set(result.grant_charges))
    return {name: project_burn(by_project.get(name, []), result.grant_charges.get(name, ()),
                               result.makespan_s, result.grant_held_jobs.get(name, 0))
            for name in names}
