"""The controller's tenancy: projects, QOS, grants, reservations and usage, kept current
from the event log, and what the scheduler hands the core's snapshot builder each cycle.

* **Tables** (:class:`TenancyTables`) are read from the store at start and read again after
  the scheduler syncs an event that changes them (``project.created``, ``member.*``,
  ``qos.created``, ``grant.created``, ``reservation.*``). The QOS table is the core's
  defaults with the stored QOS over them (a stored ``normal`` wins).
* **Usage** is :class:`~gefion.controller.accounting.Accounting`, a fold of the job events:
  rebuilt from the whole log at start, then fed every event the scheduler syncs.
* **Fair share** is recomputed from the ledger at most every ``calc_period_s`` (Slurm's
  ``PriorityCalcPeriod``), and when the tables change; in between the cycle reuses the
  same factors (the builder caches them by table).
* **Grants**: each cycle gets the cumulative charge per project; the core turns it into
  balances and holds the pending jobs of a metered project with none left
  (GRANT_EXHAUSTED).

**Grant fallback** (``ControllerConfig.grant_fallback_qos``, off by default): where a site
allows it, a metered project out of grant hours keeps running, but only in that QOS — a
preemptible QOS that charges nothing (``scavenger``). Its pending jobs in a charged QOS are
handed to the core in the fallback QOS (low priority, evictable, free); a job started so
records it in ``job.started`` (``payload.qos``), which is what its run is charged at and
how it stays preemptible after a restart. The job's own QOS (``gefion show``) is left as
submitted, and a new grant puts its waiting jobs back in it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gefion.controller.accounting import BURN_WINDOW_S, Accounting
from gefion.core.grants import grant_balances
from gefion.core.jobs import JobState
from gefion.core.reservations import Reservation
from gefion.core.tenancy import DEFAULT_QOS, QOS, Grant, Project, qos_named
from gefion.core.usage import DEFAULT_HALF_LIFE_S, FairShare, UsageLedger, fairshare
from gefion.store import EventKind, EventRow, JobRow

if TYPE_CHECKING:
    from gefion.store import Store

log = logging.getLogger("gefion.controller")

#: Slurm's default ``PriorityCalcPeriod``: fair-share factors are this old at most (s).
CALC_PERIOD_S = 300.0
#: Tenancy events after which the tables are read again.
RELOADS = frozenset({EventKind.PROJECT_CREATED, EventKind.MEMBER_ADDED,
                     EventKind.MEMBER_REMOVED, EventKind.QOS_CREATED,
                     EventKind.GRANT_CREATED, EventKind.RESERVATION_CREATED,
                     EventKind.RESERVATION_DELETED})
_PAGE = 10_000


@dataclass(frozen=True)
class TenancyTables:
    """Projects (members filled in), QOS (defaults merged with the stored ones), grants and
    reservations, as the store holds them."""

    projects: Mapping[str, Project] = field(default_factory=dict)
    qos: Mapping[str, QOS] = field(default_factory=lambda: dict(DEFAULT_QOS))
    grants: tuple[Grant, ...] = ()
    reservations: tuple[Reservation, ...] = ()

    @classmethod
    def load(cls, store: Store) -> TenancyTables:
        qos = dict(DEFAULT_QOS)
        qos.update({q.name: q for q in store.list_qos()})
        return cls(store.projects(), qos, tuple(store.list_grants()),
                   tuple(store.list_reservations()))

    def qos_of(self, name: str) -> QOS:
        """As the core's ``Snapshot.qos_of``: an unknown QOS is ``normal``."""
        return qos_named(self.qos, name)


def fallback_problem(tables: TenancyTables, name: str) -> str | None:
    """Why QOS ``name`` cannot be the grant fallback (None: it can)."""
    qos = tables.qos.get(name)
    if qos is None:
        return f"no QOS named {name!r}"
    if not qos.preemptible or qos.usage_factor > 0:
        return (f"QOS {name!r} must be preemptible and charge nothing (usage factor 0) to "
                "be the grant fallback")
    return None


class Tenancy:
    """The tenancy state of one controller (see the module). The scheduler owns it and
    calls it under its lock."""

    def __init__(self, *, half_life_s: float = DEFAULT_HALF_LIFE_S,
                 calc_period_s: float = CALC_PERIOD_S, burn_window_s: float = BURN_WINDOW_S,
                 fallback_qos: str | None = None) -> None:
        self.tables = TenancyTables()
        self.accounting = Accounting(half_life_s=half_life_s, burn_window_s=burn_window_s)
        self.calc_period_s = calc_period_s
        self.fallback_qos = fallback_qos
        self._stale = False
        self._shares: FairShare | None = None
        self._shares_at = -math.inf
        self._ledger = self.accounting.ledger  # the ledger behind the factors
        self._exhausted: frozenset[str] = frozenset()
        self._problem: str | None = None  # why the fallback QOS cannot serve, if it cannot

    # -- keeping current --------------------------------------------------------------------
    def load(self, store: Store, upto_seq: int) -> None:
        """Read the tables, and fold the log up to ``upto_seq`` into a fresh accounting."""
        self.tables = TenancyTables.load(store)
        self.accounting = Accounting(half_life_s=self.accounting.ledger.half_life_s,
                                     burn_window_s=self.accounting.burn_window_s)
        seq = 0
        while seq < upto_seq:
            batch = store.events_since(seq, limit=_PAGE)
            if not batch:
                break
            for event in batch:
                if event.seq > upto_seq:
                    break
                self.accounting.observe(event)
            seq = batch[-1].seq
        self._shares = None

    def observe(self, event: EventRow) -> None:
        """One event the scheduler synced, in log order."""
        self.accounting.observe(event)
        if event.kind in RELOADS:
            self._stale = True

    def refresh(self, store: Store) -> bool:
        """Read the tables again if an event changed them; True if it did."""
        if not self._stale:
            return False
        self._stale = False
        self.tables = TenancyTables.load(store)
        self._shares = None  # new shares or members: factors now, not in five minutes
        return True

    # -- what the cycle gets ----------------------------------------------------------------
    def fairshare(self, now: float) -> FairShare:
        """The fair-share factors, recomputed at most every :attr:`calc_period_s`."""
        if self._shares is None or not 0 <= now - self._shares_at < self.calc_period_s:
            ledger = self.accounting.ledger_at(now)
            self._shares = fairshare(self.tables.projects, ledger, ledger.as_of_s)
            self._shares_at, self._ledger = now, ledger
        return self._shares

    def shares_view(self, now: float) -> tuple[FairShare, UsageLedger, float]:
        """The factors the cycle uses, the ledger they came from, and when they were
        computed (seconds)."""
        shares = self.fairshare(now)
        return shares, self._ledger, self._shares_at

    def balances(self, now: float) -> dict[str, float]:
        """GPU-seconds left in active grants per metered project (the core's rule)."""
        return grant_balances(self.tables.projects, self.tables.grants,
                              self.accounting.charged_gpu_s(now), now)

    def snapshot_args(self, now: float) -> dict[str, Any]:
        """Keyword arguments of ``SnapshotBuilder.build`` for a cycle at ``now``."""
        return {"reservations": self.tables.reservations, "projects": self.tables.projects,
                "grants": self.tables.grants,
                "charged_gpu_s": self.accounting.charged_gpu_s(now),
                "fairshare_table": self.fairshare(now)}

    # -- the grant fallback -----------------------------------------------------------------
    def update_exhausted(self, now: float) -> frozenset[str]:
        """With a fallback QOS: note which metered projects have no grant hours left, and
        return those whose standing changed (their pending jobs change QOS)."""
        if self.fallback_qos is None:
            return frozenset()
        problem = fallback_problem(self.tables, self.fallback_qos)
        if problem is not None and problem != self._problem:
            log.warning("grant fallback off: %s", problem)
        self._problem = problem
        exhausted = frozenset() if problem is not None else frozenset(
            p for p, left in self.balances(now).items() if left <= 0)
        changed = exhausted ^ self._exhausted
        self._exhausted = exhausted
        return changed

    def effective_qos(self, row: JobRow) -> str:
        """The QOS ``row`` runs in, or would start in now: the one its run's start recorded;
        for a pending job of an exhausted project in a charged QOS, the fallback QOS."""
        if row.state is JobState.RUNNING:
            run = self.accounting.runs.get(row.id)
            if run is not None:
                return run.qos
        fallback = self.fallback_qos
        if fallback is None or row.project not in self._exhausted or \
                self.tables.qos_of(row.qos).usage_factor <= 0:
            return row.qos
        return fallback

    # -- questions --------------------------------------------------------------------------
    def is_sensitive(self, project: str) -> bool:
        p = self.tables.projects.get(project)
        return p is not None and p.sensitive


@dataclass(frozen=True, slots=True)
class NodeMarks:
    """What reservations say about a node now: the reservation whose window is open on it
    (None: none), and the start of its current or next maintenance window (None: none)."""

    reservation: str | None = None
    maint_start_ts: float | None = None
    in_maintenance: bool = False


def node_marks(reservations: tuple[Reservation, ...], now: float) -> dict[str, NodeMarks]:
    """Per node named by a reservation, its :class:`NodeMarks` at ``now``."""
    out: dict[str, NodeMarks] = {}
    for r in sorted(reservations, key=lambda r: (not r.maintenance, r.name)):
        window = r.window_at(now)
        upcoming = next(iter(r.windows(now, math.inf)), None) if r.maintenance else None
        for node in r.nodes:
            mark = out.get(node, NodeMarks())
            name = mark.reservation or (r.name if window is not None else None)
            maint = mark.maint_start_ts
            if upcoming is not None and (maint is None or upcoming[0] < maint):
                maint = upcoming[0]
            out[node] = NodeMarks(name, maint, mark.in_maintenance or
                                  (r.maintenance and window is not None))
    return out
