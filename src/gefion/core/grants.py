"""Grant accounting: what a job costs, what is left of a project's grants, how fast it burns.

The rules, in one place (see docs/fairshare.md):

* A job costs ``gpus × seconds × usage_factor`` GPU-seconds (the QOS usage factor; a
  scavenger QOS may charge 0). Partial hours count pro rata: nothing is rounded.
* Charges are spent from the grant that expires first among those that can take them;
  ties by grant id. What a grant cannot take spills into the next one.
* A project's balance is what is left in its grants that are active at ``now``
  (``valid_from_s <= now < valid_to_s``).

Units: GPU-seconds inside the core (a grant holds ``gpu_hours × 3600``), GPU-hours only in
the burn-down people read; times in seconds. A *charge* is a ``(time_s, gpu_s)`` pair.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from gefion.core.errors import InputError
from gefion.core.tenancy import Grant, Project

#: A charge against grants: ``(time_s, gpu_s)``, GPU-seconds already × usage factor.
Charge = tuple[float, float]

SECONDS_PER_HOUR = 3600.0


def charge_gpu_s(gpus: int, seconds: float, usage_factor: float = 1.0) -> float:
    """GPU-seconds charged for ``gpus`` GPUs held for ``seconds`` under a QOS usage factor.

    Pro rata: 8 GPUs for 30 minutes cost 4 GPU-hours (14,400 GPU-seconds), not 8.
    """
    if gpus < 0:
        raise InputError(f"must be >= 0, got {gpus}", field="gpus")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise InputError(f"must be a finite number of seconds >= 0, got {seconds}",
                         field="seconds")
    if not (math.isfinite(usage_factor) and usage_factor >= 0):
        raise InputError(f"must be >= 0, got {usage_factor}", field="usage_factor")
    return gpus * seconds * usage_factor


def _expiry_order(g: Grant) -> tuple[float, str]:
    return (g.valid_to_s, g.id)


def grant_balances(projects: Mapping[str, Project], grants: Iterable[Grant],
                   charged_gpu_s: Mapping[str, float], now: float) -> dict[str, float]:
    """Remaining GPU-seconds in active grants for each metered project.

    ``charged_gpu_s`` is each project's cumulative charge, with no times. It is spent from
    the project's grants that have started by ``now``, earliest expiry first (expired ones
    included: they absorbed the charges made while they were active); what is left in the
    grants active at ``now`` is the balance. Without times this assumes charges were made in
    expiry order; :func:`burn_down` spends time-stamped charges exactly.
    """
    by_project: dict[str, list[Grant]] = {}
    for g in grants:
        by_project.setdefault(g.project, []).append(g)
    out: dict[str, float] = {}
    for name, project in projects.items():
        if not project.metered:
            continue
        left_to_charge = charged_gpu_s.get(name, 0.0)
        balance = 0.0
        for g in sorted(by_project.get(name, []), key=_expiry_order):
            if g.valid_from_s > now:
                continue
            spent = min(g.gpu_s, left_to_charge)
            left_to_charge -= spent
            if g.active(now):
                balance += g.gpu_s - spent
        out[name] = balance
    return out


def _checked(charges: Iterable[Charge]) -> list[Charge]:
    out: list[Charge] = []
    for i, (time_s, gpu_s) in enumerate(charges):
        if not math.isfinite(time_s):
            raise InputError(f"time must be finite, got {time_s}", field=f"charges[{i}]")
        if not (math.isfinite(gpu_s) and gpu_s >= 0):
            raise InputError(f"GPU-seconds must be >= 0, got {gpu_s}", field=f"charges[{i}]")
        out.append((time_s, gpu_s))
    return out


def spend(pool: Sequence[Grant], left: list[float], t: float, due: float) -> float:
    """Charge ``due`` GPU-seconds at ``t`` to the grants of ``pool`` active then, in pool
    order (earliest expiry first), taking from ``left`` (each grant's GPU-seconds left,
    updated in place); what none could take."""
    for i, g in enumerate(pool):
        if due <= 0:
            break
        if g.active(t):
            spent = min(left[i], due)
            left[i] -= spent
            due -= spent
    return due


def burn_down(grants: Iterable[Grant],
              charges: Iterable[Charge]) -> list[tuple[float, float]]:
    """GPU-hours left in a pool of grants (normally one project's) over time.

    Each charge is spent at its time from the grants active then, earliest expiry first;
    what no active grant can take is unfunded and dropped (a balance never goes below 0).
    Returns ``(time_s, gpu_hours_left)`` at every charge time and every grant start and
    (finite) end, in time order, each after everything that happens at that time; the
    hours left count only grants active at that time.
    """
    pool = sorted(grants, key=_expiry_order)
    left = [g.gpu_s for g in pool]
    due_at: dict[float, float] = {}
    for time_s, gpu_s in _checked(charges):
        due_at[time_s] = due_at.get(time_s, 0.0) + gpu_s
    times = set(due_at)
    times.update(g.valid_from_s for g in pool)
    times.update(g.valid_to_s for g in pool if math.isfinite(g.valid_to_s))
    points: list[tuple[float, float]] = []
    for t in sorted(times):
        spend(pool, left, t, due_at.get(t, 0.0))
        active_left = math.fsum(left[i] for i, g in enumerate(pool) if g.active(t))
        points.append((t, active_left / SECONDS_PER_HOUR))
    return points


def burn_rate(charges: Iterable[Charge], now: float, window_s: float) -> float:
    """Mean burn in GPU-seconds per second (= GPUs busy × usage factor) over the window
    ``(now - window_s, now]``; charges after ``now`` are ignored."""
    if not (math.isfinite(window_s) and window_s > 0):
        raise InputError(f"must be > 0 seconds, got {window_s}", field="window")
    since = now - window_s
    return math.fsum(gpu_s for t, gpu_s in _checked(charges) if since < t <= now) / window_s


def forecast_exhaustion(balance_gpu_s: float, burn_rate_gpu_s_per_s: float,
                        now: float) -> float | None:
    """When (seconds) ``balance_gpu_s`` reaches zero at a constant burn rate; ``now`` if it
    already has, None if the rate is not positive (it never will)."""
    if not burn_rate_gpu_s_per_s > 0:
        return None
    if balance_gpu_s <= 0:
        return now
    return now + balance_gpu_s / burn_rate_gpu_s_per_s
