"""The scheduling cycle: one entry point, called by the live controller and by the twin.

``run_cycle(snapshot, now, policy)`` runs the phases of DESIGN.md over a snapshot taken at
cycle start and returns decisions, reasons and ETAs:

1. **filter** — jobs that cannot run at all get their reason (:mod:`gefion.core.filters`);
2. **order** — the policy's priorities (multifactor, FIFO, LAS), every factor visible;
3. **place** — in priority order, start each job that fits now
   (:mod:`gefion.core.placement`), respecting the planned starts of jobs ahead of it;
4. **plan** — a job that cannot start gets a planned start in the availability profile,
   for the first ``policy.depth`` such jobs (1 = EASY, None = conservative); the plan is a
   block in the profile, so later jobs start early (backfill) only if they delay no plan;
5. **preempt** — a job that may preempt and still cannot start evicts the cheapest set of
   whole jobs that frees a good placement, with a grace period.

The cycle is pure: same snapshot, ``now`` and policy, same result.
"""

from __future__ import annotations

import numpy as np

from gefion.core.decisions import (
    CycleResult,
    PendingReason,
    Placement,
    Preemption,
    Start,
    Verdict,
)
from gefion.core.filters import reject, singleton_owners
from gefion.core.jobs import TopologyConstraint
from gefion.core.planner import Request, earliest_fit, fit_at
from gefion.core.policies.base import Policy
from gefion.core.preemption import choose_victims
from gefion.core.profile import Availability, Block, BoolArray, IntArray, reservation_blocks
from gefion.core.snapshot import PendingJob, Snapshot

#: A running job past its time limit is about to be killed: expect its GPUs back this soon.
OVERDUE_S = 1.0

_PREEMPT_FOR = frozenset({PendingReason.RESOURCES, PendingReason.TOPOLOGY})


class _Cycle:
    """The working state of one cycle. Built, run once, dropped."""

    def __init__(self, snapshot: Snapshot, now: float, policy: Policy) -> None:
        self.snap = snapshot
        self.now = now
        self.policy = policy
        cluster = snapshot.cluster
        self.names = [n.name for n in cluster.nodes]
        self.node_index = {name: i for i, name in enumerate(self.names)}
        capacity = [n.gpus for n in cluster.nodes]
        up = [n.state.schedulable for n in cluster.nodes]
        self.avail = Availability(capacity, up, now)
        self.node_units: IntArray = np.asarray(cluster.node_units, dtype=np.int64)
        self.unit_count = len(cluster.units)
        self.up: BoolArray = np.asarray(up, dtype=np.bool_)
        self.all_nodes: BoolArray = np.ones(len(capacity), dtype=np.bool_)
        self.node_projects: list[set[str]] = [set() for _ in capacity]
        self.project_gpus: dict[str, int] = {}
        self.user_qos_gpus: dict[tuple[str, str], int] = {}
        for r in snapshot.running:
            end = max(r.expected_end_s, now + OVERDUE_S) if r.expected_end_s <= now \
                else r.expected_end_s
            for n, g in r.alloc:
                self.avail.hold(n, g, end)
                self.node_projects[n].add(r.spec.project)
            self._count(r.spec.project, r.spec.user, r.spec.qos, r.gpus)
        self.sensitive = frozenset(p for p, proj in snapshot.projects.items() if proj.sensitive)
        self.res_by_name = {r.name: r for r in snapshot.reservations}
        self.starts: list[Start] = []
        self.verdicts: list[Verdict] = []
        self.planned: dict[str, Placement] = {}
        self.blocked: list[tuple[PendingJob, Request, PendingReason]] = []
        self.rank: dict[str, int] = {}

    # -- bookkeeping --------------------------------------------------------------------
    def _count(self, project: str, user: str, qos: str, gpus: int) -> None:
        self.project_gpus[project] = self.project_gpus.get(project, 0) + gpus
        key = (user, qos)
        self.user_qos_gpus[key] = self.user_qos_gpus.get(key, 0) + gpus

    def _allowed(self, job: PendingJob) -> BoolArray:
        allowed = self.up
        res = self.res_by_name.get(job.spec.reservation or "")
        if res is not None:
            mask = np.zeros_like(self.up)
            for name in res.nodes:
                if name in self.node_index:
                    mask[self.node_index[name]] = True
            allowed = allowed & mask
        if self.sensitive:
            project = job.spec.project
            if project in self.sensitive:
                bad = [i for i, ps in enumerate(self.node_projects) if ps - {project}]
            else:
                bad = [i for i, ps in enumerate(self.node_projects)
                       if ps & self.sensitive - {project}]
            if bad:
                allowed = allowed.copy()
                allowed[bad] = False
        return allowed

    def _request(self, job: PendingJob) -> Request:
        assert job.shape is not None
        reservations = self.snap.reservations
        if reservations:
            admitted = [r.admits(job.spec.project, job.spec.user, job.spec.reservation)
                        for r in reservations]
            capacity = self.avail.capacity
            requested = job.spec.reservation

            def res_blocks(start: float, end: float) -> list[Block]:
                return reservation_blocks(reservations, self.node_index, capacity, admitted,
                                          requested, start, end)
        else:
            def res_blocks(start: float, end: float) -> list[Block]:
                return []
        return Request(job.id, job.shape.nodes, job.shape.gpus_per_node,
                       float(job.spec.time_limit_s), self._allowed(job),
                       job.spec.same_su is TopologyConstraint.REQUIRED, res_blocks,
                       reservations)

    def _fit_now(self, req: Request, **kw: object) -> IntArray | None:
        return fit_at(self.avail, req, self.now, self.node_units, self.unit_count, **kw)

    def _start(self, job: PendingJob, nodes: IntArray, backfilled: bool) -> None:
        assert job.shape is not None
        g = job.shape.gpus_per_node
        end = self.now + job.spec.time_limit_s
        for n in nodes:
            self.avail.hold(int(n), g, end)
            self.node_projects[int(n)].add(job.spec.project)
        self._count(job.spec.project, job.spec.user, job.spec.qos, job.shape.gpus)
        self.starts.append(Start(job.id, self._placement(nodes, g), backfilled))

    def _placement(self, nodes: IntArray, gpus: int) -> Placement:
        return Placement(tuple((self.names[int(n)], gpus) for n in nodes))

    # -- reasons ------------------------------------------------------------------------
    def _why_not(self, job: PendingJob, req: Request) -> PendingReason:
        """Why a job that passed the filters cannot start now."""
        g, count = req.gpus_per_node, req.nodes
        res = self.res_by_name.get(job.spec.reservation or "")
        if res is not None and res.window_at(self.now) is None:
            return PendingReason.RESERVATION
        if self.avail.count_ge(g) < count:
            cap = self.avail.capacity
            if int(np.count_nonzero((cap >= g) & self.up)) < count <= int(
                    np.count_nonzero(cap >= g)):
                return PendingReason.NODES_DOWN
            return PendingReason.RESOURCES
        if self._fit_now(req, block_filter=lambda b: b.owner.startswith("reservation:")) \
                is not None:
            return PendingReason.PRIORITY
        if self._fit_now(req, with_reservations=False,
                         block_filter=lambda b: False) is not None:
            return PendingReason.RESERVATION
        if req.one_unit:
            loose = Request(req.job_id, req.nodes, req.gpus_per_node, req.duration_s,
                            req.allowed, False, req.reservation_blocks, req.reservations)
            if self._fit_now(loose) is not None:
                return PendingReason.TOPOLOGY
        return PendingReason.RESOURCES

    def _over_limit(self, job: PendingJob) -> Verdict | None:
        assert job.shape is not None
        project = self.snap.projects.get(job.spec.project)
        gpus = job.shape.gpus
        if project is not None and project.max_gpus is not None and \
                self.project_gpus.get(project.name, 0) + gpus > project.max_gpus:
            return Verdict(job.id, PendingReason.PROJECT_LIMIT, None,
                           f"project {project.name} holds {self.project_gpus.get(project.name, 0)}"
                           f" of {project.max_gpus} GPUs")
        qos = self.snap.qos_of(job.spec.qos)
        if qos.max_gpus_per_user is not None and \
                self.user_qos_gpus.get((job.spec.user, qos.name), 0) + gpus > \
                qos.max_gpus_per_user:
            return Verdict(job.id, PendingReason.QOS_LIMIT, None,
                           f"user {job.spec.user} at QOS {qos.name} GPU limit")
        return None

    # -- the phases ---------------------------------------------------------------------
    def run(self) -> CycleResult:
        snap, policy = self.snap, self.policy
        owners = singleton_owners(snap)
        res_names = frozenset(self.res_by_name)
        table = policy.priorities(snap, self.now)
        order = np.lexsort((np.arange(len(snap.pending)), -table.priority))
        depth = policy.depth
        plans = 0
        blocked_any = False
        last_plan = self.now
        for rank, i in enumerate(order.tolist()):
            job = snap.pending[i]
            self.rank[job.id] = rank
            rejection = reject(job, snap, owners, res_names)  # phase 1
            if rejection is not None:
                self.verdicts.append(Verdict(job.id, rejection.reason, None, rejection.detail))
                continue
            limited = self._over_limit(job)
            if limited is not None:
                self.verdicts.append(limited)
                continue
            req = self._request(job)
            strict_wait = blocked_any and not policy.backfill
            if not strict_wait:  # phase 3: start now if it fits around every plan so far
                nodes = self._fit_now(req)
                if nodes is not None:
                    self._start(job, nodes, backfilled=blocked_any)
                    continue
            reason = PendingReason.PRIORITY if strict_wait else self._why_not(job, req)
            blocked_any = True
            planned_start = None
            if depth is None or plans < depth:  # phase 4: plan it
                fit = earliest_fit(self.avail, req, self.node_units, self.unit_count,
                                   not_before=last_plan if not policy.backfill else self.now)
                if fit is not None:
                    plans += 1
                    planned_start = fit.start_s
                    if not policy.backfill:
                        last_plan = fit.start_s
                    g = req.gpus_per_node
                    for n in fit.nodes:
                        self.avail.add_block(Block(fit.start_s, fit.start_s + req.duration_s,
                                                   int(n), g, job.id))
                    self.planned[job.id] = self._placement(fit.nodes, g)
            self.verdicts.append(Verdict(job.id, reason, planned_start))
            if reason in _PREEMPT_FOR:
                self.blocked.append((job, req, reason))
        preemptions = self._preempt() if policy.preemption else []
        return CycleResult(self.now, policy.name, tuple(self.starts), tuple(preemptions),
                           tuple(self.verdicts), table, self.planned)

    def _preempt(self) -> list[Preemption]:
        out: list[Preemption] = []
        taken: set[str] = set()
        started = {s.job_id for s in self.starts}
        verdict_at = {v.job_id: k for k, v in enumerate(self.verdicts)}
        for job, req, _ in self.blocked:
            candidates = [r for r in self.snap.running
                          if r.id not in taken and r.id not in started
                          and self.policy.may_preempt(job, r, self.snap, self.now)]
            if not candidates:
                continue
            rank = self.rank[job.id]

            def ahead(b: Block, rank: int = rank) -> bool:
                # Only reservations and plans of jobs ahead of this one stand in its way.
                return b.owner.startswith("reservation:") or self.rank.get(b.owner, rank) < rank
            found = choose_victims(self.avail, req, candidates,
                                   lambda v: self.policy.victim_cost(v, self.now),
                                   self.node_units, self.unit_count, ahead)
            if found is None or not found[0]:
                continue
            victims, nodes = found
            grace = max(v.grace_s for v in victims)
            for v in victims:
                taken.add(v.id)
                out.append(Preemption(v.id, v.grace_s, job.id, v.requeue))
            start = self.now + grace
            for n in nodes:
                self.avail.add_block(Block(self.now, start + req.duration_s, int(n),
                                           req.gpus_per_node, job.id))
            self.planned[job.id] = self._placement(nodes, req.gpus_per_node)
            k = verdict_at[job.id]
            self.verdicts[k] = Verdict(job.id, PendingReason.PREEMPTING, start,
                                       f"preempting {', '.join(v.id for v in victims)}")
        return out


def run_cycle(snapshot: Snapshot, now: float, policy: Policy) -> CycleResult:
    """Run one scheduling cycle over ``snapshot`` at time ``now`` (seconds)."""
    return _Cycle(snapshot, now, policy).run()
