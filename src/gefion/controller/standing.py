"""Where projects stand: fair share (the ``sshare`` view) and grants with their forecast.

Read-only views of :class:`~gefion.controller.tenancy.Tenancy` for the API, the CLI
(``gefion share``) and the portal; computed with the core's own functions, so they say what
the cycle sees.

**Forecast.** A project's burn rate is its charged use (GPU-seconds × usage factor, running
jobs included) over the last 24 hours — or since the site started, if that is less —
divided by the window; at that rate its hours left last until
:func:`gefion.core.grants.forecast_exhaustion` says. The forecast ignores grant expiry;
``expires_ts`` says when the last active grant lapses, whichever comes first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gefion.controller.tenancy import Tenancy
from gefion.core.grants import SECONDS_PER_HOUR, forecast_exhaustion, grant_balances
from gefion.core.tenancy import Grant, Project
from gefion.core.usage import FairShareRow


@dataclass(frozen=True, slots=True)
class GrantStanding:
    """One project's grants now. Hours are GPU-hours × usage factor; ``burn_gpu_h_per_h``
    is GPU-hours charged per hour (= GPUs busy × usage factor) over ``burn_window_s``;
    ``runs_out_ts`` is when the hours left are spent at that rate (None: never, nothing
    burns); ``exhausted``: a metered project with nothing left (its jobs wait)."""

    project: str
    metered: bool
    grants: tuple[Grant, ...]
    granted_gpu_h: float  # in grants active now
    charged_gpu_h: float  # ever, running jobs included
    left_gpu_h: float  # in grants active now
    burn_gpu_h_per_h: float
    burn_window_s: float
    runs_out_ts: float | None
    expires_ts: float | None  # when the last active grant lapses (None: never, or none)
    exhausted: bool


def grant_standing(tenancy: Tenancy, project: str, now: float) -> GrantStanding:
    """``project``'s :class:`GrantStanding` at ``now``."""
    tables, accounting = tenancy.tables, tenancy.accounting
    p = tables.projects.get(project) or Project(project)
    grants = tuple(g for g in tables.grants if g.project == project)
    charged = accounting.charged_gpu_s(now).get(project, 0.0)
    # The core's balance rule, for a project that is not metered too (its grants are then
    # a budget to watch, not a limit).
    metered = {project: Project(project, metered=True)}
    left_s = grant_balances(metered, grants, {project: charged}, now)[project]
    active = [g for g in grants if g.active(now)]
    rate = accounting.burn_rate(project, now)
    ends = [g.valid_to_s for g in active]
    return GrantStanding(
        project=project, metered=p.metered, grants=grants,
        granted_gpu_h=math.fsum(g.gpu_hours for g in active),
        charged_gpu_h=charged / SECONDS_PER_HOUR, left_gpu_h=left_s / SECONDS_PER_HOUR,
        burn_gpu_h_per_h=rate, burn_window_s=accounting.burn_window(now),
        runs_out_ts=forecast_exhaustion(left_s, rate, now),
        expires_ts=max(ends) if ends and math.isfinite(max(ends)) else None,
        exhausted=p.metered and left_s <= 0)


def grant_standings(tenancy: Tenancy, now: float) -> list[GrantStanding]:
    """Every project that has grants or is metered, by name."""
    names = {g.project for g in tenancy.tables.grants}
    names |= {name for name, p in tenancy.tables.projects.items() if p.metered}
    return [grant_standing(tenancy, name, now) for name in sorted(names)]


@dataclass(frozen=True, slots=True)
class ShareView:
    """The fair-share table the cycle uses (``rows``: each project, then its users), the
    time it was computed (``as_of_ts``) and the decay half-life."""

    rows: tuple[FairShareRow, ...]
    as_of_ts: float
    half_life_s: float


def share_view(tenancy: Tenancy, now: float) -> ShareView:
    shares, ledger, at = tenancy.shares_view(now)
    return ShareView(tuple(shares.rows()), at, ledger.half_life_s)
