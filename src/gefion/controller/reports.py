"""Usage reports: GPU-hours, jobs and energy per project, user, funder or QOS over a window
(``gefion report usage``, ``GET /v1/reports/usage``).

Every run of a job (a requeued job has several; :mod:`gefion.store.usage`) that overlaps
the window ``[from, to)`` counts **pro rata**: the part of it inside the window. A running
run counts up to now.

* **raw GPU-hours**: GPUs held × hours held, inside the window;
* **GPU-hours** (charged): raw × the usage factor of the QOS the run ran in (the one its
  ``job.started`` names — a project out of grant hours may run in the fallback QOS — else
  the job's), at the factors in force now (the core's defaults, then the stored QOS; an
  unknown QOS charges as ``normal``), as grants and fair share charge it;
* **energy** (kWh): the run's measured energy (docs/telemetry.md) × the fraction of the
  run inside the window, i.e. spread evenly over the run; a running run's energy is the
  sampler's integral so far. Runs without a measurement (ended before telemetry, or lost
  to a crash) add nothing to energy: their raw GPU-hours are ``unmeasured_gpu_hours``;
* **jobs**: jobs with a run in the window (a job counts once per row it touches; the total
  counts it once).

**Funders.** A project's usage is its funders': each slice of a run (the part in the
window) goes to the grants of its project active at the slice's midpoint, split pro rata
to their GPU-hours, under each grant's funder (``(unnamed)`` for a grant without one);
a slice with no active grant goes to ``(no grant)``.

:func:`usage_report` is a pure function of the runs; :func:`controller_report` gathers
them from a started controller.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gefion.core.errors import InputError
from gefion.core.tenancy import Grant
from gefion.store.usage import Run

if TYPE_CHECKING:
    from gefion.controller.service import Controller

#: What a report may be grouped by.
BY = ("project", "user", "funder", "qos")
NO_GRANT = "(no grant)"
UNNAMED_FUNDER = "(unnamed)"
_J_PER_KWH = 3.6e6


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One group's usage in the window. Hours are GPU-hours, energy kWh."""

    key: str
    jobs: int
    gpu_hours: float
    raw_gpu_hours: float
    energy_kwh: float
    unmeasured_gpu_hours: float

    def to_json(self, by: str) -> dict[str, Any]:
        return {by: self.key, "jobs": self.jobs, "gpu_hours": round(self.gpu_hours, 6),
                "raw_gpu_hours": round(self.raw_gpu_hours, 6),
                "energy_kwh": round(self.energy_kwh, 6),
                "unmeasured_gpu_hours": round(self.unmeasured_gpu_hours, 6)}


@dataclass(frozen=True)
class UsageReport:
    """Rows by key (sorted), and the total over all of them."""

    by: str
    from_ts: float
    to_ts: float
    rows: tuple[UsageRow, ...]
    total: UsageRow

    def to_json(self) -> dict[str, Any]:
        total = self.total.to_json(self.by)
        del total[self.by]
        return {"by": self.by, "from_ts": self.from_ts, "to_ts": self.to_ts,
                "rows": [r.to_json(self.by) for r in self.rows], "total": total}


class _Sums:
    __slots__ = ("charged_s", "energy_j", "jobs", "raw_s", "unmeasured_s")

    def __init__(self) -> None:
        self.charged_s = self.raw_s = self.energy_j = self.unmeasured_s = 0.0
        self.jobs: set[int] = set()

    def add(self, job_id: int, share: float, raw_s: float, charged_s: float,
            energy_j: float | None) -> None:
        self.jobs.add(job_id)
        self.raw_s += share * raw_s
        self.charged_s += share * charged_s
        if energy_j is None:
            self.unmeasured_s += share * raw_s
        else:
            self.energy_j += share * energy_j

    def row(self, key: str) -> UsageRow:
        return UsageRow(key, len(self.jobs), self.charged_s / 3600, self.raw_s / 3600,
                        self.energy_j / _J_PER_KWH, self.unmeasured_s / 3600)


def usage_report(runs: Iterable[Run], *, by: str, from_ts: float, to_ts: float, now: float,
                 usage_factor: Callable[[str], float], grants: Sequence[Grant] = (),
                 live_energy_j: Mapping[int, float] | None = None) -> UsageReport:
    """The report of ``runs`` in ``[from_ts, to_ts)`` grouped ``by`` (see the module).
    ``now`` ends running runs; ``live_energy_j``: job → joules of its running run so far."""
    check_window(by, from_ts, to_ts)
    live = live_energy_j or {}
    groups: dict[str, _Sums] = defaultdict(_Sums)
    total = _Sums()
    for run in runs:
        end = run.end_ts if run.end_ts is not None else max(now, run.start_ts)
        lo, hi = max(run.start_ts, from_ts), min(end, to_ts)
        if hi <= lo:
            continue
        fraction = (hi - lo) / (end - run.start_ts)
        raw_s = run.gpus * (hi - lo)
        charged_s = raw_s * usage_factor(run.qos)
        measured = run.energy_j if run.end_ts is not None else live.get(run.job_id)
        energy_j = None if measured is None else measured * fraction
        total.add(run.job_id, 1.0, raw_s, charged_s, energy_j)
        for key, share in _keys(run, by, (lo + hi) / 2, grants):
            groups[key].add(run.job_id, share, raw_s, charged_s, energy_j)
    return UsageReport(by, from_ts, to_ts,
                       tuple(groups[k].row(k) for k in sorted(groups)), total.row("total"))


def check_window(by: str, from_ts: float, to_ts: float) -> None:
    if by not in BY:
        raise InputError(f"must be one of {', '.join(BY)}, got {by!r}", field="by")
    if not (math.isfinite(from_ts) and math.isfinite(to_ts)):
        raise InputError("the window needs finite times", field="from")
    if to_ts <= from_ts:
        raise InputError(f"must be after from ({from_ts}), got {to_ts}", field="to")


def _keys(run: Run, by: str, at_ts: float,
          grants: Sequence[Grant]) -> list[tuple[str, float]]:
    """The groups a slice of ``run`` (at ``at_ts``) counts in, with its share of each."""
    if by == "project":
        return [(run.project, 1.0)]
    if by == "user":
        return [(run.user, 1.0)]
    if by == "qos":
        return [(run.qos, 1.0)]
    active = [g for g in grants if g.project == run.project and g.active(at_ts)]
    if not active:
        return [(NO_GRANT, 1.0)]
    hours = sum(g.gpu_hours for g in active)
    shares: dict[str, float] = defaultdict(float)
    for g in active:
        shares[g.funder or UNNAMED_FUNDER] += g.gpu_hours / hours if hours > 0 \
            else 1.0 / len(active)
    return sorted(shares.items())


def controller_report(controller: Controller, *, by: str, from_ts: float,
                      to_ts: float | None = None,
                      projects: Iterable[str] | None = None) -> UsageReport:
    """The report of a started controller's runs (``projects`` only, if given); ``to_ts``
    None: now. Running runs count up to now."""
    from gefion.controller.tenancy import TenancyTables

    store = controller.store
    if store is None:
        raise InputError("the controller is not started", field="controller")
    now = controller.now()
    to_ts = now if to_ts is None else to_ts
    check_window(by, from_ts, to_ts)
    wanted = None if projects is None else set(projects)
    tables = TenancyTables.load(store)
    sampler = controller.sampler
    return usage_report(
        store.runs(since_ts=from_ts, until_ts=to_ts, projects=wanted), by=by,
        from_ts=from_ts, to_ts=to_ts, now=now,
        usage_factor=lambda qos: tables.qos_of(qos).usage_factor,
        grants=[g for g in tables.grants if wanted is None or g.project in wanted],
        live_energy_j=sampler.energy_so_far() if sampler is not None else None)
