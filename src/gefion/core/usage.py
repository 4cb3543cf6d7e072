"""Usage ledger and fair share (see docs/fairshare.md).

:class:`UsageLedger` holds usage in GPU-seconds — already multiplied by the QOS usage
factor — per project and per (project, user), decayed exponentially with a half-life
(Slurm's ``PriorityDecayHalfLife``) as of ``as_of_s``. Usage charged over an interval is
decayed as if it accrued continuously, so charges commute: their order never matters.

:func:`fairshare` turns a ledger and the projects' shares into Slurm's *classic* fair-share
factor ``F = 2^(-UE/S)`` for a two-level tree (projects under the root, users with equal
shares under each project). Factors are in [0, 1]; higher means more deserving.

Times are seconds on the caller's clock; the module reads no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gefion.core.errors import InputError
from gefion.core.tenancy import Project

#: Slurm's default ``PriorityDecayHalfLife``: 7 days, in seconds.
DEFAULT_HALF_LIFE_S = 7 * 86_400.0


def decay_factor(elapsed_s: float, half_life_s: float) -> float:
    """The fraction of usage left after ``elapsed_s`` seconds: ``2^(-elapsed/half_life)``.

    Exactly 0.5 after one half-life; an infinite half-life means no decay.
    """
    return math.pow(2.0, -elapsed_s / half_life_s)


def _refuse(gpu_s: float, start_s: float, end_s: float) -> None:
    """Raise the :class:`InputError` that says what is wrong with a charge."""
    if not (math.isfinite(gpu_s) and gpu_s >= 0):
        raise InputError(f"must be a finite number >= 0, got {gpu_s}", field="gpu_s")
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise InputError(f"times must be finite, got [{start_s}, {end_s}]", field="start")
    raise InputError(f"end {end_s} is before start {start_s}", field="end")


def accrual_weight(start_s: float, end_s: float, as_of_s: float, half_life_s: float) -> float:
    """What one unit of usage spread evenly over ``[start_s, end_s]`` is worth at ``as_of_s``.

    It is the mean of the decay factor over the interval,
    ``(1/d)·∫ 2^(-(as_of - t)/h) dt = 2^(-(as_of - end)/h) · (1 - 2^(-d/h)) / (λ·d)``
    with ``d = end - start`` and ``λ = ln 2 / h``; written with ``expm1`` so that short
    intervals lose no precision. A zero-length interval is a point charge at ``end_s``.
    """
    at_end = decay_factor(as_of_s - end_s, half_life_s)
    x = math.log(2.0) * (end_s - start_s) / half_life_s  # λ·d, dimensionless
    if x < 1e-9:
        # Series of (1 - e^-x)/x; also keeps subnormal x (tiny intervals) exact.
        return at_end * (1.0 - x / 2.0)
    return at_end * -math.expm1(-x) / x


@dataclass(frozen=True)
class UsageLedger:
    """Decayed usage in GPU-seconds (already × QOS usage factor) as of ``as_of_s``.

    Immutable: :meth:`decayed_to` and :meth:`charge` return new ledgers. ``projects`` maps a
    project to its usage, ``users`` maps ``(project, user)`` to that user's usage in it; a
    project's usage is the sum of its users' (the ledger keeps both so neither is summed on
    every read). ``half_life_s`` may be ``math.inf`` for no decay.
    """

    half_life_s: float = DEFAULT_HALF_LIFE_S
    as_of_s: float = 0.0
    projects: Mapping[str, float] = field(default_factory=dict)
    users: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.half_life_s > 0:
            raise InputError(f"must be > 0 seconds, got {self.half_life_s}",
                             field="half_life")
        if not math.isfinite(self.as_of_s):
            raise InputError(f"must be a finite time, got {self.as_of_s}", field="as_of")
        # Private copies: a caller's dict changing later must not change this ledger.
        object.__setattr__(self, "projects", dict(self.projects))
        object.__setattr__(self, "users", dict(self.users))

    def decayed_to(self, now: float) -> UsageLedger:
        """This ledger decayed to ``now`` (seconds). Raises :class:`InputError` if ``now`` is
        before ``as_of_s``: decay cannot be undone."""
        if not math.isfinite(now):
            raise InputError(f"must be a finite time, got {now}", field="now")
        if now < self.as_of_s:
            raise InputError(f"cannot decay usage backwards from {self.as_of_s} to {now}",
                             field="now")
        if now == self.as_of_s:
            return self
        return UsageLedger._owning(self.half_life_s, now, *self._decayed_maps(now))

    def _decayed_maps(self, now: float) -> tuple[dict[str, float],
                                                  dict[tuple[str, str], float]]:
        """Fresh copies of the usage maps, decayed from ``as_of_s`` to ``now``."""
        k = decay_factor(now - self.as_of_s, self.half_life_s)
        return ({p: u * k for p, u in self.projects.items()},
                {pu: u * k for pu, u in self.users.items()})

    @classmethod
    def _owning(cls, half_life_s: float, as_of_s: float, projects: dict[str, float],
                users: dict[tuple[str, str], float]) -> UsageLedger:
        """A ledger made of checked values and fresh maps that nobody else holds: what the
        constructor would check and copy (a replay makes thousands of ledgers)."""
        ledger = object.__new__(cls)
        for name, value in (("half_life_s", half_life_s), ("as_of_s", as_of_s),
                            ("projects", projects), ("users", users)):
            object.__setattr__(ledger, name, value)
        return ledger

    def charge(self, project: str, user: str, gpu_s: float,
               start_s: float, end_s: float) -> UsageLedger:
        """Add ``gpu_s`` GPU-seconds (× usage factor) used evenly over ``[start_s, end_s]``.

        The ledger first decays to ``end_s`` if that is later than ``as_of_s``; an interval
        that ended earlier (a late event) is decayed to ``as_of_s``. Either way the usage is
        worth exactly what continuous accrual would give, so charges commute.
        """
        return self.charge_many([(project, user, gpu_s, start_s, end_s)])

    def charge_many(self, charges: Iterable[tuple[str, str, float, float, float]]
                    ) -> UsageLedger:
        """Every ``(project, user, gpu_s, start_s, end_s)`` charge at once: the ledger that
        :meth:`charge` gives for each in turn (charges commute), for one copy of the maps.
        It is as of the latest end, if that is later than ``as_of_s``."""
        items = list(charges)
        if not items:
            return self
        inf = math.inf
        latest = -inf
        for _, _, gpu_s, start_s, end_s in items:
            # one chain of comparisons (NaN fails them all); the reason only on failure
            if not (0.0 <= gpu_s < inf and -inf < start_s <= end_s < inf):
                _refuse(gpu_s, start_s, end_s)
            if end_s > latest:
                latest = end_s
        if latest > self.as_of_s:  # decayed to the latest end, in one copy of the maps
            as_of = latest
            projects, users = self._decayed_maps(latest)
        else:
            as_of, projects, users = self.as_of_s, dict(self.projects), dict(self.users)
        half_life = self.half_life_s
        weights: dict[tuple[float, float], float] = {}  # charges share a few intervals
        weight_of, project_of, user_of = weights.get, projects.get, users.get
        for project, user, gpu_s, start_s, end_s in items:
            interval = (start_s, end_s)
            weight = weight_of(interval)
            if weight is None:
                weight = weights[interval] = accrual_weight(start_s, end_s, as_of, half_life)
            added = gpu_s * weight
            projects[project] = project_of(project, 0.0) + added
            pair = (project, user)
            users[pair] = user_of(pair, 0.0) + added
        return UsageLedger._owning(half_life, as_of, projects, users)

    def project_usage(self, project: str) -> float:
        """Decayed GPU-seconds of ``project`` as of ``as_of_s`` (0 if never charged)."""
        return self.projects.get(project, 0.0)

    def user_usage(self, project: str, user: str) -> float:
        """Decayed GPU-seconds of ``user`` within ``project`` as of ``as_of_s``."""
        return self.users.get((project, user), 0.0)

    def total_usage(self) -> float:
        """Decayed GPU-seconds of all projects together (the root of the fair-share tree)."""
        return math.fsum(self.projects.values())


@dataclass(frozen=True, slots=True)
class FairShareRow:
    """One line of an ``sshare``-like view. ``user`` is None on a project's own row.

    ``raw_shares``: configured shares (a user's is 1). ``shares_norm``: fraction of the
    machine, 0..1. ``raw_usage_gpu_s``: decayed GPU-seconds. ``usage_norm``: fraction of all
    decayed usage, 0..1. ``effective_usage``: Slurm's UE. ``factor``: ``2^(-UE/S)``.
    """

    project: str
    user: str | None
    raw_shares: float
    shares_norm: float
    raw_usage_gpu_s: float
    usage_norm: float
    effective_usage: float
    factor: float


@dataclass(frozen=True)
class FairShare:
    """Fair-share factors in 0..1 per project and per (project, user); higher = more
    deserving. ``table`` holds the rows behind them, projects by name, each followed by
    its users by name."""

    projects: Mapping[str, float]
    users: Mapping[tuple[str, str], float]
    table: tuple[FairShareRow, ...] = ()

    def factor(self, project: str, user: str) -> float:
        """The factor for a job of ``user`` in ``project``.

        A user the ledger has never seen has no usage, and with equal user shares the classic
        formula then gives exactly the project's factor; a project never seen has no usage
        and gets 1.0.
        """
        f = self.users.get((project, user))
        if f is not None:
            return f
        return self.projects.get(project, 1.0)

    def rows(self) -> list[FairShareRow]:
        """The ``sshare``-like view: each project's row, then its users' rows."""
        return list(self.table)


def _factor(effective_usage: float, shares_norm: float, has_shares: bool) -> float:
    # As Slurm's priority_p_calc_fs_factor: no shares, no claim on the machine (0.0).
    if not has_shares:
        return 0.0
    if effective_usage <= 0:
        return 1.0  # decided before dividing: shares_norm may have underflowed to 0
    if shares_norm <= 0:
        return 0.0  # the limit of 2^(-UE/S) as S -> 0
    return min(1.0, max(0.0, math.pow(2.0, -effective_usage / shares_norm)))


def fairshare(projects: Mapping[str, Project], ledger: UsageLedger, now: float, *,
              rows: bool = True) -> FairShare:
    """Classic fair share for projects (with ``shares``) and their users (equal shares).

    Projects in the ledger but not in ``projects`` take part with shares 1 (the default of
    :class:`Project`); a project's users are its ``members`` and anyone the ledger charged in
    it. ``now`` (seconds) is when the factors hold; the ledger is decayed to it and raises
    :class:`InputError` if it is later than ``now``. Since decay scales all usage alike,
    normalised usage and factors do not change with ``now``; raw usage in the rows does.
    ``rows=False`` leaves :attr:`FairShare.table` empty (a replay reads only the factors,
    every few minutes of its clock).
    """
    ledger = ledger.decayed_to(now)
    if not rows:
        return _factors_only(projects, ledger)
    shares = {name: p.shares for name, p in projects.items()}
    for name in ledger.projects:
        shares.setdefault(name, 1.0)
    total_shares = math.fsum(shares.values())
    total_usage = ledger.total_usage()

    users_of: dict[str, set[str]] = {name: set() for name in shares}
    for name, p in projects.items():
        users_of[name].update(p.members)
    for name, user in ledger.users:
        users_of.setdefault(name, set()).add(user)

    def usage_norm(raw: float) -> float:
        return min(1.0, raw / total_usage) if total_usage > 0 else 0.0

    project_factors: dict[str, float] = {}
    user_factors: dict[tuple[str, str], float] = {}
    table: list[FairShareRow] = []
    for name in sorted(shares):
        s_p = shares[name] / total_shares if total_shares > 0 else 0.0
        raw_p = ledger.project_usage(name)
        ue_p = usage_norm(raw_p)  # children of the root: UE = U
        f_p = _factor(ue_p, s_p, shares[name] > 0)
        project_factors[name] = f_p
        if rows:
            table.append(FairShareRow(name, None, shares[name], s_p, raw_p,
                                      usage_norm(raw_p), ue_p, f_p))
        members = sorted(users_of[name]) if rows else users_of[name]
        used = ledger.users
        for user in members:
            # Users share their project equally: S_child / S_all_siblings = 1 / n.
            s_u = s_p / len(members)
            raw_u = used.get((name, user), 0.0)
            u_u = usage_norm(raw_u)
            ue_u = u_u + (ue_p - u_u) / len(members)
            f_u = _factor(ue_u, s_u, shares[name] > 0)
            user_factors[(name, user)] = f_u
            if rows:
                table.append(FairShareRow(name, user, 1.0, s_u, raw_u, u_u, ue_u, f_u))
    return FairShare(project_factors, user_factors, tuple(table))


def _factors_only(projects: Mapping[str, Project], ledger: UsageLedger) -> FairShare:
    """:func:`fairshare` without its rows, as a replay asks every few minutes: the same
    numbers by the same arithmetic, in one pass over the ledger's users."""
    shares = {name: p.shares for name, p in projects.items()}
    for name in ledger.projects:
        shares.setdefault(name, 1.0)
    total_shares = math.fsum(shares.values())
    total_usage = ledger.total_usage()
    used, project_usage, pow2 = ledger.users, ledger.projects, math.pow
    users_of: dict[str, list[str]] = {}  # each user once: the ledger's, then members
    for name, user in used:
        users_of.setdefault(name, []).append(user)
    for name, p in projects.items():
        if p.members:
            users_of.setdefault(name, []).extend(
                m for m in dict.fromkeys(p.members) if (name, m) not in used)
    project_factors: dict[str, float] = {}
    user_factors: dict[tuple[str, str], float] = {}
    for name in sorted(shares):
        has = shares[name] > 0
        s_p = shares[name] / total_shares if total_shares > 0 else 0.0
        raw_p = project_usage.get(name, 0.0)
        ue_p = min(1.0, raw_p / total_usage) if total_usage > 0 else 0.0
        project_factors[name] = _factor(ue_p, s_p, has)
        members = users_of.get(name)
        if not members:
            continue
        count = len(members)
        s_u = s_p / count
        if not has or total_usage <= 0:  # no claim (0.0), or nobody used anything
            value = _factor(0.0, s_u, has)  # each user's: 0.0 without shares, else 1.0
            for user in members:
                user_factors[(name, user)] = value
            continue
        for user in members:
            # _factor, inlined: ue_u > 0 and s_u > 0 put 2^(-ue_u/s_u) in (0, 1]
            u_u = min(1.0, used.get((name, user), 0.0) / total_usage)
            ue_u = u_u + (ue_p - u_u) / count
            user_factors[(name, user)] = 1.0 if ue_u <= 0 else 0.0 if s_u <= 0 else \
                pow2(2.0, -ue_u / s_u)
    return FairShare(project_factors, user_factors)
