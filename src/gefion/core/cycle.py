"""The scheduling cycle: one entry point, called by the live controller and by the twin.

``run_cycle(snapshot, now, policy)`` runs the phases of DESIGN.md over a snapshot taken at
cycle start and returns decisions, reasons and ETAs:

1. **filter** — jobs that cannot run at all get their reason (:mod:`gefion.core.filters`);
2. **order** — the policy's priorities (multifactor, FIFO, LAS), every factor visible;
3. **place** — in priority order, start each job that fits now
   (:mod:`gefion.core.placement`), respecting the planned starts of jobs ahead of it;
4. **plan** — a job that cannot start gets a planned start in the availability profile,
   for the first ``policy.depth`` such jobs (1 = EASY, None = conservative); the plan is
   held in the profile, so later jobs start early (backfill) only if they delay no plan;
5. **preempt** — a job that may preempt and still cannot start evicts the cheapest set of
   whole jobs that frees a good placement, with a grace period (:mod:`.preemption`).

The cycle is pure: same snapshot, ``now`` and policy, same result. It is also the hot path
of both bodies, so the common case (a job that plainly cannot start) costs a few dictionary
look-ups, and failed fits are memoised by shape (see :class:`FailureMemo`).
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable

import numpy as np

from gefion.core.carry import CarriedPlan, PlanCarry, lineage, usable_carry
from gefion.core.columns import pending_columns, running_columns
from gefion.core.decisions import (
    RUN_REASONS,
    CycleResult,
    PendingReason,
    Placement,
    Planned,
    Preemption,
    Start,
    Verdict,
    Verdicts,
)
from gefion.core.filters import reject, singleton_owners
from gefion.core.jobs import JobSpec, TopologyConstraint
from gefion.core.memo import FailureMemo, Ruled, Witness
from gefion.core.planner import Fit, Request, earliest_fit, fit_at, fitting_nodes
from gefion.core.plans import Plan, PlanProfile
from gefion.core.policies.base import Policy
from gefion.core.preemption import choose_victims
from gefion.core.prefix import priority_order
from gefion.core.profile import Availability, Block, BoolArray, IntArray, reservation_blocks
from gefion.core.snapshot import PendingJob, Snapshot, current_base

#: A running job past its time limit is about to be killed: expect its GPUs back this soon.
OVERDUE_S = 1.0

_PREEMPT_FOR = frozenset({PendingReason.RESOURCES, PendingReason.TOPOLOGY,
                          PendingReason.NODES_DOWN})
_REQUIRED = TopologyConstraint.REQUIRED
_CHUNK = 512
_HELD = RUN_REASONS.index(PendingReason.HELD)
_PRIORITY = RUN_REASONS.index(PendingReason.PRIORITY)
_PLAIN_LOOSE = (None, (), None, False)
#: Fewer candidates than this are ruled out by the memo one by one, not as a vector.
_VECTOR_MIN = 4
#: Nodes that may have gained room since a carried plan was made, checked one by one
#: (carry.py, condition 3); with more, the plan is searched anew.
_GAINED_MAX = 24


def _no_blocks(start: float, end: float) -> list[Block]:
    """No advance reservation blocks anything."""
    return []


class _Cycle:
    """The working state of one cycle. Built, run once, dropped."""

    def __init__(self, snapshot: Snapshot, now: float, policy: Policy,
                 carry: PlanCarry | None = None, etas: bool = True) -> None:
        self.snap = snapshot
        self.now = now
        self.policy = policy
        cluster = snapshot.cluster
        self.names = cluster.names
        self.node_index = cluster.node_index
        capacity, up, units = cluster.arrays
        base = current_base(snapshot)  # kept by the builder between cycles
        if base is not None and base.earliest_end_s > now:
            self.avail = Availability(capacity, up, now, lent=base)
        else:  # overdue jobs are expected back shortly: compute the base here
            rcols = running_columns(snapshot)
            ends = rcols.hold_end_s
            self.avail = Availability(capacity, up, now, holds=(
                rcols.hold_nodes, rcols.hold_gpus,
                np.where(ends > now, ends, now + OVERDUE_S)))
        self.node_units: IntArray = units
        self.unit_count = len(cluster.units)
        self.up: BoolArray = up
        self.node_projects: list[set[str]] = [set() for _ in capacity] \
            if any(p.sensitive for p in snapshot.projects.values()) else []
        self.project_gpus: dict[str, int] = {}
        self.user_qos_gpus: dict[tuple[str, str], int] = {}
        self._arrays: dict[str, int] | None = None  # running tasks per limited array
        self.sensitive = frozenset(p for p, proj in snapshot.projects.items() if proj.sensitive)
        # Who runs where, and how much each project and user holds, matter only when some
        # project is sensitive or has limits: skip the bookkeeping otherwise.
        self.special_qos = frozenset(
            q.name for q in snapshot.qos.values()
            if q.max_time_limit_s is not None or q.max_gpus_per_user is not None)
        self.limited = frozenset(
            p.name for p in snapshot.projects.values() if p.max_gpus is not None
        ) | self.special_qos
        track_nodes, track_counts = bool(self.sensitive), bool(self.limited)
        if track_nodes or track_counts:
            for r in snapshot.running:
                if track_nodes:
                    for n, _ in r.alloc:
                        self.node_projects[n].add(r.spec.project)
                if track_counts:
                    self._count(r.spec.project, r.spec.user, r.spec.qos, r.gpus)
        self.res_by_name = {r.name: r for r in snapshot.reservations}
        # What sends a job down the slow path: anything but a plain job.
        self.exhausted = frozenset(p for p, left in snapshot.grant_left_gpu_s.items()
                                   if left <= 0)
        self.starts: list[Start] = []
        self.verdicts = Verdicts()
        self.planned = Planned(self.names)
        # (rank, snapshot index, verdict index) of jobs waiting for resources, if anyone can
        # be evicted at all
        self.blocked: list[tuple[int, int, int]] = []
        self.victim_keys: list[Hashable | None] = []
        if policy.preemption:
            self.victim_keys = policy.victim_keys(snapshot.running, snapshot, now)
        self.preempt = self.victim_keys.count(None) != len(self.victim_keys)
        self.blocked_any = False
        self.barrier: tuple[str, int, int] | None = None  # see CycleResult.barrier
        self.plans = 0
        self.last_plan = now
        self.owners: dict[tuple[str, str], str] = {}
        self.res_names: frozenset[str] = frozenset()
        #: by job id, and (plain jobs) by shape: see _request
        self.requests: dict[object, Request] = {}
        self.rank: dict[str, int] = {}
        self.memo = FailureMemo()
        self.no_plans = PlanProfile(len(capacity))
        # Plans carried from the last cycle (see carry.py), and this cycle's for the next.
        usable = usable_carry(carry, snapshot, now) if policy.backfill else None
        self.carry: PlanCarry | None = usable[0] if usable is not None else None
        #: nodes of the runs that ended since the carry's cycle (condition 3 of carry.py)
        self.released: frozenset[int] = usable[1] if usable is not None else frozenset()
        self.made: list[Plan] = []
        self.made_set: set[Plan] = set()
        self.carried: dict[str, CarriedPlan] = {}
        # Without ETAs, a plan is made only while a job behind it may start now (see
        # _plan_matters); ``hopeless`` once none may.
        self.etas = etas
        self.hopeless = False
        self.order: list[int] = []
        #: (starts when computed, ranks that may start: see _hopeful)
        self._hope: tuple[int, list[int]] | None = None
        #: the last job found able to start (see _plan_matters)
        self._witness: Witness | None = None
        #: (from when, on which nodes) of every start and plan made so far, in order
        self._taken: list[tuple[float, tuple[int, ...]]] = []
        #: ``order`` as an array, and the masks of :meth:`_simple` (made when first asked)
        self._order_arr: IntArray | None = None
        self._masks: tuple[BoolArray, BoolArray] | None = None

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
            # Sensitive projects share nodes with no other project, in both directions.
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
        req = self.requests.get(job.id)
        if req is not None:
            return req
        assert job.shape is not None
        reservations = self.snap.reservations
        if not reservations and job.spec.reservation is None and not self.sensitive:
            # A request says nothing of its job but its shape and the nodes it may use —
            # here every up node: jobs of one shape share it.
            shape = (job.shape.nodes, job.shape.gpus_per_node, job.spec.time_limit_s,
                     job.spec.same_su is _REQUIRED)
            req = self.requests.get(shape)
            if req is None:
                req = self.requests[shape] = Request(
                    job.id, shape[0], shape[1], float(shape[2]), self.up, shape[3],
                    _no_blocks, (), self.policy.placement == "first-fit")
            self.requests[job.id] = req
            return req
        res_blocks = _no_blocks
        if reservations:
            admitted = [r.admits(job.spec.project, job.spec.user, job.spec.reservation)
                        for r in reservations]
            capacity = self.avail.capacity
            requested = job.spec.reservation

            def res_blocks(start: float, end: float) -> list[Block]:
                return reservation_blocks(reservations, self.node_index, capacity, admitted,
                                          requested, start, end)
        req = Request(job.id, job.shape.nodes, job.shape.gpus_per_node,
                      float(job.spec.time_limit_s), self._allowed(job),
                      job.spec.same_su is _REQUIRED, res_blocks, reservations,
                      self.policy.placement == "first-fit")
        self.requests[job.id] = req
        return req

    def _fit_now(self, req: Request, *, plans: PlanProfile | None = None,
                 with_reservations: bool = True) -> IntArray | None:
        return fit_at(self.avail, req, self.now, self.node_units, self.unit_count,
                      plans=plans, with_reservations=with_reservations)

    def _start(self, job: PendingJob, nodes: IntArray, backfilled: bool) -> None:
        assert job.shape is not None
        g = job.shape.gpus_per_node
        end = self.now + job.spec.time_limit_s
        for n in nodes.tolist():
            self.avail.hold(n, g, end)
            if self.sensitive:
                self.node_projects[n].add(job.spec.project)
        self._count(job.spec.project, job.spec.user, job.spec.qos, job.shape.gpus)
        if job.spec.array_id is not None and self._arrays is not None:
            self._arrays[job.spec.array_id] = self._arrays.get(job.spec.array_id, 0) + 1
        self.starts.append(Start(job.id, self._placement(nodes, g), backfilled))
        self._taken.append((self.now, tuple(nodes.tolist())))
        if self.sensitive:  # allowed masks depend on who runs where
            self.requests.clear()
        prior = self.carry.by_job.get(job.id) if self.carry is not None else None
        if prior is not None and (prior.plan.start_s, prior.plan.end_s, prior.plan.gpus,
                                  prior.plan.nodes) == (self.now, end, g, tuple(nodes.tolist())):
            # It starts as it was planned: it holds what its plan held, where and when the
            # plan held it, so the plans behind it stand as they did (carry.py, condition 3).
            self.made_set.add(prior.plan)

    def _placement(self, nodes: IntArray, gpus: int) -> Placement:
        return Placement(tuple((self.names[n], gpus) for n in nodes.tolist()))

    def _filtered(self, job: PendingJob) -> bool:
        """Whether phase 1 must look at ``job`` (the plain ones pass untouched)."""
        spec = job.spec
        return job.shape is None or bool(spec.depends_on) or spec.reservation is not None \
            or spec.qos in self.special_qos or spec.project in self.exhausted

    def _limited(self, spec: JobSpec) -> bool:
        """Whether a limit (project, QOS, array) may hold the job back."""
        return spec.project in self.limited or spec.qos in self.limited or \
            spec.array_limit is not None

    def _count_ge_table(self) -> IntArray:
        """Nodes with at least ``g`` GPUs free now, for ``g`` = 0 … the largest node, and a
        trailing 0 for larger requests."""
        return np.array([*self.avail.counts_ge(), 0])

    def _simple(self) -> tuple[BoolArray, BoolArray]:
        """Per pending job (snapshot order): ``simple`` — plain, in no QOS or project that
        has limits, special QOS terms or no grant hours left (phase 1 and the limits pass
        it untouched: :meth:`_filtered` and :meth:`_limited` are false); and ``loose`` —
        simple, and any set of up nodes will do (its class key is ``_PLAIN_LOOSE``)."""
        masks = self._masks
        if masks is None:
            cols = pending_columns(self.snap)
            simple = cols.plain.copy()
            special = np.array([q in self.special_qos or q in self.limited
                                for q in cols.qos_names], dtype=np.bool_)
            if special.any():
                simple &= ~special[cols.qos]
            special_p = np.array([p in self.exhausted or p in self.limited
                                  for p in cols.projects], dtype=np.bool_)
            if special_p.any():
                simple &= ~special_p[cols.project]
            loose = simple & ~cols.one_unit if not (self.snap.reservations or self.sensitive) \
                else np.zeros(len(simple), dtype=np.bool_)
            masks = self._masks = (simple, loose)
        return masks

    def _order_array(self) -> IntArray:
        """``order`` (snapshot indices in priority order) as an array, made once."""
        order = self._order_arr
        if order is None:
            order = self._order_arr = np.asarray(self.order, dtype=np.int64)
        return order

    def _ruled(self, ranks: list[int]) -> Ruled | None:
        """What the memo rules out of ``ranks`` (:class:`Ruled` over the loose jobs, whose
        class key is ``_PLAIN_LOOSE``: :meth:`_may_start` would find the memo's failure);
        None when too few to be worth a vector."""
        if len(ranks) < _VECTOR_MIN:
            return None
        idx = self._order_array()[ranks]
        loose = self._simple()[1][idx]
        if not np.count_nonzero(loose):
            return None
        cols = pending_columns(self.snap)
        return Ruled(self.memo, "start", _PLAIN_LOOSE, loose, cols.gpus_per_node[idx],
                     cols.nodes[idx], cols.limit_s[idx])

    # -- reasons ------------------------------------------------------------------------
    def _class_key(self, job: PendingJob) -> tuple[object, ...]:
        """Jobs with equal keys may use the same nodes (same reservations, same neighbours,
        same topology constraint): the scope of :class:`FailureMemo`."""
        spec = job.spec
        if not (self.snap.reservations or self.sensitive):
            return (None, (), None, spec.same_su is _REQUIRED)
        admitted: tuple[bool, ...] = ()
        if self.snap.reservations:
            admitted = tuple(r.admits(spec.project, spec.user, spec.reservation)
                             for r in self.snap.reservations)
        return (spec.reservation, admitted, spec.project if self.sensitive else None,
                spec.same_su is _REQUIRED)

    def _nodes_down(self, g: int, count: int) -> bool:
        """Would the job fit the cluster if every drained or down node were up?"""
        if g > self.avail.max_gpus:
            return False
        up_ge, all_ge = self.snap.cluster.nodes_ge
        return int(up_ge[g]) < count <= int(all_ge[g])

    def _why_not(self, job: PendingJob, key: tuple[object, ...]) -> PendingReason:
        """Why a job that passed the filters cannot start now."""
        assert job.shape is not None
        g, count, d = job.shape.gpus_per_node, job.shape.nodes, job.spec.time_limit_s
        if job.spec.reservation is not None:
            res = self.res_by_name[job.spec.reservation]
            if res.window_at(self.now) is None:
                return PendingReason.RESERVATION
        if self.avail.count_ge(g) < count:
            return PendingReason.NODES_DOWN if self._nodes_down(g, count) \
                else PendingReason.RESOURCES
        memo = self.memo
        if key == _PLAIN_LOOSE:
            # Any up node may take it and any set of nodes will do: enough nodes with the
            # GPUs free now means it would fit, were it not for the plans ahead of it.
            return PendingReason.PRIORITY
        if not memo.failed("priority", key, g, count, d):
            if self._fit_now(self._request(job), plans=self.no_plans) is not None:
                return PendingReason.PRIORITY
            memo.add("priority", key, g, count, d)
        if not memo.failed("reservation", key, g, count, d):
            if self._fit_now(self._request(job), with_reservations=False,
                             plans=self.no_plans) is not None:
                return PendingReason.RESERVATION
            memo.add("reservation", key, g, count, d)
        if key[-1] and not memo.failed("topology", key, g, count, d):
            if self._fit_now(self._request(job).loosened()) is not None:
                return PendingReason.TOPOLOGY
            memo.add("topology", key, g, count, d)
        return PendingReason.RESOURCES

    def _array_tasks_running(self, array_id: str) -> int:
        if self._arrays is None:  # counted on first need: few cycles see a limited array
            self._arrays = {}
            for r in self.snap.running:
                if r.spec.array_id is not None:
                    self._arrays[r.spec.array_id] = self._arrays.get(r.spec.array_id, 0) + 1
        return self._arrays.get(array_id, 0)

    def _over_limit(self, job: PendingJob) -> Verdict | None:
        assert job.shape is not None
        limit, array_id = job.spec.array_limit, job.spec.array_id
        if limit is not None and array_id is not None and \
                self._array_tasks_running(array_id) >= limit:
            return Verdict(job.id, PendingReason.ARRAY_LIMIT, None,
                           f"array {array_id} runs {limit} tasks at once")
        project = self.snap.projects.get(job.spec.project)
        gpus = job.shape.gpus
        held = self.project_gpus.get(job.spec.project, 0)
        if project is not None and project.max_gpus is not None and \
                held + gpus > project.max_gpus:
            return Verdict(job.id, PendingReason.PROJECT_LIMIT, None,
                           f"project {project.name} holds {held} of {project.max_gpus} GPUs")
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
        self.owners = singleton_owners(snap)
        self.res_names = frozenset(self.res_by_name)
        table, order = priority_order(policy, snap, self.now)  # phase 2
        self.order = order
        depth = policy.depth
        held = self._held_runs(order)
        rank, n = 0, len(order)
        while rank < n:
            if self.blocked_any and (self.hopeless or (depth is not None
                                                       and self.plans >= depth)):
                self._bulk(order, rank)  # nothing more to plan: decide the rest in bulk
                break
            end = held.get(rank)
            if end is not None:  # a run of held jobs: decided as a block
                self.verdicts.add_run(pending_columns(snap).ids,
                                      np.asarray(order[rank:end], dtype=np.int64),
                                      np.full(end - rank, _HELD, dtype=np.int64))
                rank = end
                continue
            self._consider(rank, order[rank])
            rank += 1
        preemptions = self._preempt() if self.blocked else []
        return CycleResult(self.now, policy.name, tuple(self.starts), tuple(preemptions),
                           self.verdicts, table, self.planned, self.barrier,
                           self._leave_carry())

    def _held_runs(self, order: list[int]) -> dict[int, int]:
        """Runs of held jobs (with a valid shape) in ``order``: start rank → end rank. A held
        job is decided before anything else about it, so a run needs no look at each."""
        held = pending_columns(self.snap).held
        if not np.count_nonzero(held):
            return {}
        edges = np.diff(np.concatenate(([0], held[order].astype(np.int8), [0])))
        return dict(zip(np.flatnonzero(edges == 1).tolist(),
                        np.flatnonzero(edges == -1).tolist(), strict=True))

    def _consider(self, rank: int, i: int) -> None:
        """Phases 1, 3 and 4 for the pending job at snapshot index ``i``."""
        job = self.snap.pending[i]
        spec, shape = job.spec, job.shape
        verdicts, policy, avail, memo = self.verdicts, self.policy, self.avail, self.memo
        # phase 1: the slow path only for jobs that are not plain
        if job.held or self._filtered(job):
            rejection = reject(job, self.snap, self.owners, self.res_names)
            if rejection is not None:
                verdicts.append(Verdict(job.id, rejection.reason, None, rejection.detail))
                return
        assert shape is not None
        if self._limited(spec):
            over = self._over_limit(job)
            if over is not None:
                verdicts.append(over)
                return
        g, count, d = shape.gpus_per_node, shape.nodes, spec.time_limit_s
        key = self._class_key(job)
        if self.blocked_any and not policy.backfill:
            reason = PendingReason.PRIORITY  # strict order: nobody passes a waiting job
        else:
            # phase 3: start now if it fits around every plan made so far
            if avail.count_ge(g) >= count and not memo.failed("start", key, g, count, d):
                nodes = self._fit_now(self._request(job))
                if nodes is not None:
                    self._start(job, nodes, backfilled=self.blocked_any)
                    return
                memo.add("start", key, g, count, d)
            reason = self._why_not(job, key)
            if not policy.backfill and reason in _PREEMPT_FOR and not len(verdicts):
                self.barrier = (job.id, count, g)  # every job ahead of it started
        self.blocked_any = True
        planned_start = None
        if (policy.depth is None or self.plans < policy.depth) and \
                (self.etas or self._plan_matters(rank)):  # phase 4: plan it
            req = self._request(job)
            fit = self._carried_fit(job.id, key, req, float(d)) or earliest_fit(
                avail, req, self.node_units, self.unit_count,
                not_before=self.now if policy.backfill else self.last_plan)
            if fit is not None:
                self.plans += 1
                planned_start = self.last_plan = fit.start_s
                self.rank[job.id] = rank
                plan = Plan(fit.start_s, fit.start_s + d, tuple(fit.nodes.tolist()), g, job.id)
                avail.add_plan(plan)
                self.carried[job.id] = CarriedPlan(plan, (g, count, float(d)), len(self.made))
                self.made.append(plan)
                self.made_set.add(plan)
                self._taken.append((plan.start_s, plan.nodes))
                self.planned.plan(job.id, fit.nodes, g)
        if self.preempt and reason in _PREEMPT_FOR:
            self.blocked.append((rank, i, len(verdicts)))
        verdicts.append(Verdict(job.id, reason, planned_start))

    def _plan_matters(self, rank: int) -> bool:
        """Whether a plan for the job at ``rank`` can change a decision of this cycle.
        (Without ETAs nothing else reads it.)

        Only a job behind it that could start now, around the plans made so far, can be
        stopped by it. Within a cycle starts and plans only take capacity away, so a job
        that cannot start around the plans so far never will this cycle: it is tried
        here, once (its failure goes into the memo, as its own turn would put it), and
        the first job behind that still fits is the proof that the plan matters. When no
        job behind may start, none will: the cycle is ``hopeless`` and decides the rest
        in bulk. Preemption reads the plans: with it, every plan is made."""
        if self.preempt:
            return True
        if self.hopeless or not self.policy.backfill:  # nobody passes a waiting job
            self.hopeless = True
            return False
        witness = self._witness
        if witness is not None and witness.rank > rank and witness.holds(self._taken):
            return True
        ranks, pending, order = self._hopeful(), self.snap.pending, self.order
        at = bisect.bisect_right(ranks, rank)
        ruled = self._ruled(ranks[at:])  # those the memo rules out, as a vector
        j = at
        while j < len(ranks):
            if ruled is not None:
                j = at + ruled.next_open(j - at)
                if j == len(ranks):
                    break
            job = pending[order[ranks[j]]]
            fits, nodes = self._may_start(job)
            if not fits:
                if ruled is not None:
                    ruled.failed(j - at)
                j += 1
            else:
                del ranks[at:j]  # they cannot start this cycle
                need = job.shape.nodes if job.shape is not None else 0
                self._witness = Witness(ranks[at], self.now + job.spec.time_limit_s, need,
                                         nodes, len(self._taken))
                return True
        del ranks[at:]
        self.hopeless = True
        return False

    def _hopeful(self) -> list[int]:
        """Ranks of the jobs not held that find enough nodes with their GPUs free now
        (plans ignored) or are not plain, less those found unable to start; made anew
        after each start."""
        hope = self._hope
        if hope is None or hope[0] != len(self.starts):  # capacity changed: look again
            cols = pending_columns(self.snap)
            order = self._order_array()
            count_ge = self._count_ge_table()
            g = np.minimum(cols.gpus_per_node[order], self.avail.max_gpus + 1)
            may = (count_ge[g] >= cols.nodes[order]) | ~cols.plain[order]
            may &= ~cols.held[order]
            hope = self._hope = (len(self.starts), may.nonzero()[0].tolist())
        return hope[1]

    def _may_start(self, job: PendingJob) -> tuple[bool, set[int] | None]:
        """Whether ``job`` fits now around the plans so far (phase 3 of its own turn, with
        the same memo); a job that is not plain or has limits is assumed to. If it fits,
        also the nodes it may use, where any of them will do (None: not known)."""
        spec, shape = job.spec, job.shape
        if shape is None or self._filtered(job) or self._limited(spec):
            return True, None
        g, count, d = shape.gpus_per_node, shape.nodes, spec.time_limit_s
        key = self._class_key(job)
        if self.avail.count_ge(g) < count or self.memo.failed("start", key, g, count, d):
            return False, None
        req = self._request(job)
        ok = fitting_nodes(self.avail, req, self.now, self.node_units, self.unit_count)
        if ok is not None:
            return True, None if req.one_unit else set(ok.nonzero()[0].tolist())
        self.memo.add("start", key, g, count, d)
        return False, None

    def _carried_fit(self, job_id: str, key: tuple[object, ...], req: Request,
                     d: float) -> Fit | None:
        """Last cycle's plan for ``job_id``, if it is provably the plan a search would
        find now (conditions 2 and 3 of carry.py; the cycle checked 1), else None."""
        carry = self.carry
        if carry is None or key[:3] != (None, (), None):
            return None
        prior = carry.by_job.get(job_id)
        if prior is None or prior.shape != (req.gpus_per_node, req.nodes, d):
            return None
        start = prior.plan.start_s
        if start < self.now:
            return None
        # Nodes that may offer more than last cycle: those of runs that ended since, and
        # those of the plans that were ahead of it then and are not now.
        gained = set(self.released)
        for plan in carry.plans[:prior.ahead]:
            if plan not in self.made_set:
                gained.update(plan.nodes)
                if len(gained) > _GAINED_MAX:
                    return None  # checking them would cost more than the search
        g, avail = req.gpus_per_node, self.avail
        if any(req.allowed[n] and avail.node_fits_before(n, g, d, start) for n in gained):
            return None  # one of them might start it sooner: search
        nodes = self._fit_at(req, start)
        return None if nodes is None else Fit(start, nodes)

    def _fit_at(self, req: Request, start: float) -> IntArray | None:
        return fit_at(self.avail, req, start, self.node_units, self.unit_count)

    def _leave_carry(self) -> PlanCarry | None:
        lent = lineage(self.snap)
        if lent is None or not self.policy.backfill or self.snap.reservations:
            return None
        return PlanCarry(lent[0], lent[1], self.snap.cluster, self.now, tuple(self.made),
                         self.carried)

    def _bulk(self, order: list[int], first: int) -> None:
        """Decide ``order[first:]`` once no more plans will be made.

        A plain job that does not even find enough nodes with its GPUs free now (plans
        ignored) cannot start, and capacity only shrinks within a cycle: runs of such jobs
        are decided as a block. So are plain jobs that any up nodes may take and whose shape
        a failed start of this cycle dominates (:class:`FailureMemo`): their own turn would
        find the memo's failure and make them wait for the plans ahead (``PRIORITY``). The
        others go one by one; the block test is redone after each start.
        """
        cols = pending_columns(self.snap)
        rest = np.asarray(order[first:], dtype=np.int64)
        simple_all, loose_all = self._simple()
        simple = simple_all[rest]
        held = cols.held[rest]
        top = self.avail.max_gpus
        g = np.minimum(cols.gpus_per_node[rest], top)
        count = cols.nodes[rest]
        # Plain jobs that any set of up nodes may take share the memo's class key
        # _PLAIN_LOOSE: those a failure already dominates are decided as a block too.
        loose = loose_all[rest]
        g_asked, limit = cols.gpus_per_node[rest], cols.limit_s[rest]
        up_ge, all_ge = self.snap.cluster.nodes_ge
        down = ((up_ge[g] < count) & (all_ge[g] >= count)).astype(np.int64)
        preempt = self.preempt
        ids, verdicts, blocked = cols.ids, self.verdicts, self.blocked

        def emit(a: int, b: int, reasons: IntArray) -> None:
            if b <= a:
                return
            if preempt:
                at = len(verdicts)
                waiting = np.flatnonzero(reasons < 2)  # resources or nodes down
                blocked.extend(zip((first + a + waiting).tolist(), rest[a + waiting].tolist(),
                                   (at + waiting).tolist(), strict=True))
            verdicts.add_run(ids, rest[a:b], reasons)

        # Chunks keep the cost of redoing the block test after a start small.
        pos, n = 0, len(rest)
        while pos < n:
            end = min(n, pos + _CHUNK)
            if self.policy.backfill:
                count_ge = self._count_ge_table()
                short = count_ge[g[pos:end]] < count[pos:end]
                # a plain job with enough nodes free, whose shape a failed start dominates,
                # waits for the plans ahead of it: what its own turn would find
                beaten = loose[pos:end] & ~short & self.memo.failed_all(
                    "start", _PLAIN_LOOSE, g_asked[pos:end], count[pos:end], limit[pos:end])
                bulk = (simple[pos:end] & short) | beaten
                reasons = np.where(short, down[pos:end], _PRIORITY)
            else:  # strict order: every plain job waits for the one ahead (codes index
                bulk = simple[pos:end]  # RUN_REASONS)
                reasons = np.full(end - pos, _PRIORITY, dtype=np.int64)
            h = held[pos:end]
            if np.count_nonzero(h):
                bulk, reasons = bulk | h, np.where(h, _HELD, reasons)
            cursor = pos
            for s in (~bulk).nonzero()[0].tolist():
                emit(cursor, pos + s, reasons[cursor - pos:s])
                started = len(self.starts)
                self._consider(first + pos + s, int(rest[pos + s]))
                cursor = pos + s + 1
                if len(self.starts) != started:
                    break  # capacity changed: redo the block test from here
            else:
                emit(cursor, end, reasons[cursor - pos:])
                cursor = end
            pos = cursor

    def _preempt(self) -> list[Preemption]:
        """Phase 5, in priority order over the jobs still waiting for resources."""
        policy, memo, snap, now = self.policy, self.memo, self.snap, self.now
        started = {s.job_id for s in self.starts}
        pool = [(r, k) for r, k in zip(snap.running, self.victim_keys, strict=True)
                if r.id not in started and k is not None]
        victim_keys = {r.id: k for r, k in pool}
        costed = sorted(((policy.victim_cost(v, now), v) for v, _ in pool),
                        key=lambda cv: (cv[0], -cv[1].start_s, cv[1].id))
        keys = policy.preemptor_keys([snap.pending[i] for _, i, _ in self.blocked], snap, now)
        out: list[Preemption] = []
        taken: set[str] = set()
        pass_plans = list(self.avail.plans)
        ahead, ahead_at = PlanProfile(self.avail.n), 0
        classes: dict[Hashable, list[Hashable | None]] = {}  # preemptor key -> victim keys
        for (rank, i, at), pkey in zip(self.blocked, keys, strict=True):
            if pkey is None:
                continue
            job = snap.pending[i]
            key = self._class_key(job)
            assert job.shape is not None
            g, count, d = job.shape.gpus_per_node, job.shape.nodes, job.spec.time_limit_s
            if memo.failed("preempt", (key, pkey), g, count, d):
                continue
            evictable = classes.get(pkey)
            if evictable is None:
                evictable = classes[pkey] = [
                    vk for vk in set(victim_keys.values()) if policy.may_preempt(pkey, vk)]
            candidates = [(c, v) for c, v in costed if v.id not in taken
                          and victim_keys[v.id] in evictable] if evictable else []
            if not candidates:
                memo.add("preempt", (key, pkey), g, count, d)
                continue
            # Only the plans of jobs ahead of this one stand in its way (plans are made in
            # priority order, and so are preemptions).
            while ahead_at < len(pass_plans) and self.rank[pass_plans[ahead_at].owner] < rank:
                ahead.add(pass_plans[ahead_at])
                ahead_at += 1
            found = choose_victims(self.avail, self._request(job), candidates,
                                   self.node_units, self.unit_count, ahead)
            if found is None:
                memo.add("preempt", (key, pkey), g, count, d)
                continue
            victims, nodes = found
            grace = max(v.grace_s for v in victims)
            planned = self.verdicts[at].planned_start_s
            if planned is not None and planned <= now + grace:
                continue  # the plan already starts it as soon as eviction would
            for v in victims:
                taken.add(v.id)
                out.append(Preemption(v.id, v.grace_s, job.id,
                                      v.requeue or policy.requeue_victims))
            start = now + grace
            plan = Plan(now, start + d, tuple(nodes.tolist()), g, job.id)
            self.avail.add_plan(plan)
            ahead.add(plan)
            self.planned.plan(job.id, nodes, g)
            self.verdicts[at] = Verdict(
                job.id, PendingReason.PREEMPTING, start,
                f"preempting {', '.join(v.id for v in victims)}")
        return out


def run_cycle(snapshot: Snapshot, now: float, policy: Policy, *,
              carry: PlanCarry | None = None, etas: bool = True) -> CycleResult:
    """Run one scheduling cycle over ``snapshot`` at time ``now`` (seconds). ``carry``: the
    last cycle's ``CycleResult.carry`` (same builder), whose plans are reused where they are
    provably what the search would find (carry.py): the result is the same either way.

    ``etas=False`` is for a body that reads only the starts and preemptions (the twin): a
    waiting job is planned only while a job behind it could still start now around the
    plans made so far, or when preemption is possible — all that the decisions depend on —
    so the starts and preemptions are those of a full cycle, but jobs behind the last one
    that may start get no planned start (``planned_start_s`` None, nothing in
    ``planned``)."""
    return _Cycle(snapshot, now, policy, carry, etas).run()
