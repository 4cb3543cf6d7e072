"""The twin's discrete-event engine: replay a trace through the core's cycle on a virtual clock.

::

    result = simulate(trace, preset("gefion"), get_policy("gefion"), seed=0)

Events sit in a heap of ``(time_s, seq, kind, key, token)`` with an ``itertools.count()``
tie-break (as in SimPy); arrivals come from the trace, which is sorted already, and are
merged with the heap. Events: arrival, completion at the job's TRUE runtime, time-limit
expiry (TIMEOUT), end of a preemption's grace period, node failure and repair (optional,
:class:`FailureModel`), the edges of advance-reservation windows, and the starts and ends
of metered projects' grants (:mod:`gefion.twin.metering`).

All events with the same time are processed together; then, if the state changed, the engine
builds a snapshot with the core's one builder and calls the core's one cycle
(``SnapshotBuilder.build`` → ``run_cycle``) and carries out its decisions: starts on the nodes the
cycle chose (GPU indices lowest first), preemptions (the victim stops after its grace period
and is requeued, or cancelled if not requeueable). There is no tick and no scheduling logic
here. One shortcut, exact: when nothing can be preempted (the policy does not preempt,
nothing runs, or the policy evicts only jobs marked preemptible and none of those runs) and
no pending job's shape fits the free GPUs at all, the cycle could decide nothing, so it is
not called (``SimResult.cycles_skipped``); under a strict policy the core names the head of
the queue that holds everyone back (``CycleResult.barrier``), and while it does not fit,
nothing can start. On this path nobody reads a cycle's ETAs, so the cycle plans only what
its decisions depend on (``run_cycle(..., etas=False)``), and in a plain setting a cycle
that would make no plan is carried out from the index of free GPUs instead
(:func:`gefion.core.prefix.plain_prefix`; a lone pending job, likewise, without a
snapshot).

The scheduler never sees a true runtime: a job's :class:`~gefion.core.jobs.JobSpec` carries
only its time limit. Trace jobs become specs by :func:`gefion.twin.specs.job_spec`.
Units: seconds, GPUs, watts, joules.
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gefion.core.builder import SnapshotBuilder
from gefion.core.carry import PlanCarry
from gefion.core.columns import pending_columns
from gefion.core.cycle import run_cycle
from gefion.core.decisions import CycleResult
from gefion.core.errors import InputError
from gefion.core.freeindex import FreeIndex
from gefion.core.grants import grant_balances
from gefion.core.invariants import assert_invariants
from gefion.core.jobs import Job, JobSpec, JobState, Shape, check_transition
from gefion.core.policies.base import PLACEMENTS, Policy
from gefion.core.prefix import plain_prefix, priority_order, share_order
from gefion.core.reservations import Reservation
from gefion.core.snapshot import Snapshot
from gefion.core.strict import plain_body, strict_policy
from gefion.core.tenancy import DEFAULT_QOS, QOS, Grant, Project, qos_named
from gefion.core.topology import Cluster
from gefion.core.usage import FairShare, UsageLedger, fairshare
from gefion.twin.charging import UsageCharger
from gefion.twin.gcpause import paused_gc
from gefion.twin.metering import GrantMeter
from gefion.twin.power import DGX_H100, PowerModel
from gefion.twin.result import JobRecord, SimResult
from gefion.twin.specs import drop_reason, job_spec
from gefion.twin.state import ClusterState, JobRun
from gefion.twin.traces.model import Trace, TraceJob

#: The QOS table of the twin when none is given: the core's defaults, except that preempted
#: jobs of the ``normal`` QOS are requeued (as traces were: Philly's durations sum all
#: attempts; Tiresias and Slurm with ``JobRequeue=1`` requeue too).
TWIN_QOS: Mapping[str, QOS] = {**DEFAULT_QOS,
                               "normal": replace(DEFAULT_QOS["normal"], requeue=True)}

#: Seconds between recomputations of fair-share factors when usage changed (Slurm's
#: default ``PriorityCalcPeriod``, 5 minutes).
PRIORITY_CALC_PERIOD_S = 300.0

_END, _TIMEOUT, _STOP, _FAIL, _REPAIR, _WINDOW, _GRANT = range(7)

#: ``on_cycle(snapshot, result)``: called after each cycle, before its decisions are
#: carried out (for tests and tools that watch the core's decisions and reasons).
CycleHook = Callable[[Snapshot, CycleResult], None]
_PROGRESS_EVERY = 2048  # event batches between progress calls
_IDLE = "never started: left pending on an idle cluster"


@dataclass(frozen=True, slots=True)
class FailureModel:
    """Node failures: every node that is not down fails after an exponential time with mean
    ``mtbf_s`` and is repaired after an exponential time with mean ``mttr_s`` (seconds),
    drawn from ``numpy.random.default_rng(seed)`` in event order."""

    mtbf_s: float
    mttr_s: float

    def __post_init__(self) -> None:
        for name in ("mtbf_s", "mttr_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"must be a finite number of seconds > 0, got {value}",
                                 field=name)


class _Engine:
    def __init__(self, trace: Trace, cluster: Cluster, policy: Policy, *, seed: int,
                 reservations: tuple[Reservation, ...], projects: Mapping[str, Project],
                 qos: Mapping[str, QOS], failures: FailureModel | None, power: PowerModel,
                 resume: bool, check: bool, sample_every_s: float, meter: GrantMeter,
                 on_cycle: CycleHook | None, carry_plans: bool = True,
                 fast_path: bool = True) -> None:
        self.trace, self.policy, self.seed = trace, policy, seed
        self.reservations, self.projects, self.qos = reservations, projects, qos
        self.meter, self.on_cycle = meter, on_cycle
        #: a recurring reservation's edges never end: how long an idle cluster with jobs
        #: still pending waits for one of them to help (a full period of each)
        self.idle_patience_s = max((r.period_s + r.duration_s for r in reservations
                                    if r.period_s is not None), default=0.0)
        self.idle_since: float | None = None
        self.failures, self.resume, self.check = failures, resume, check
        self.state = ClusterState(cluster, power, sample_every_s)
        self.cluster = cluster
        self.heap: list[tuple[float, int, int, str | int, int]] = []
        self.seq = itertools.count()
        self.active: dict[str, JobRun] = {}
        self.running: dict[str, JobRun] = {}  # the active jobs that hold GPUs now
        self.builder = SnapshotBuilder(cluster, qos=qos)  # told of job changes (see tell)
        #: job changes not yet told to the builder (None: forget the job), in the order
        #: of their last change; told just before the builder is asked for a snapshot
        self.untold: dict[str, Job | None] = {}
        self.waiting: dict[str, JobRun] = {}  # the pending jobs
        #: free GPUs indexed for placement, for cycles whose only pending job is plain
        #: (see lone_start); None without ``fast_path`` (see simulate)
        self.free: FreeIndex | None = FreeIndex(
            cluster, first_fit=policy.placement == "first-fit") if fast_path else None
        self.records: list[JobRecord] = []
        #: per distinct request: its spec, shape (None: dropped, for the reason), whether
        #: it was rounded up, whether its runs may be evicted, and its QOS usage factor
        self.specs: dict[tuple[object, ...],
                         tuple[JobSpec, Shape | None, str, bool, bool, float]] = {}
        self.dropped: Counter[str] = Counter()
        self.ledger = UsageLedger()
        self.charger = UsageCharger()  # fed only when the policy orders by fair share
        #: fair-share factors of ``ledger`` as of ``shares_at``, recomputed every period
        self.shares: FairShare | None = None
        self.shares_at = -math.inf
        self.rng = np.random.default_rng(seed)
        self.preemptions = self.cycles = self.skipped = self.rounded = 0
        # what the policy (a frozen record) says, read once: these are asked at every event
        self.fair = policy.uses_fairshare
        self.preempts = policy.preemption
        self.evicts_any = not policy.evicts_preemptible_only
        #: running jobs that their QOS or spec lets be evicted (see may_decide)
        self.evictable = 0
        self.failures_seen = self.failed_runs = self.events = self.repairs_pending = 0
        # window edges in the heap: of one-off reservations, and of recurring ones (which
        # never run out)
        self.windows_pending = self.recurring_pending = self.grant_edges_pending = 0
        self.makespan_s = 0.0
        self.integrals = (0.0, 0.0, 0.0)  # allocated GPU-s, stranded GPU-s, J at makespan
        #: the last cycle's barrier (CycleResult.barrier), while it holds
        self.barrier: tuple[str, int, int] | None = None
        #: the last cycle's plans, for the next (CycleResult.carry; None: plan afresh)
        self.carry_plans = carry_plans
        self.carry: PlanCarry | None = None

    # -- events -------------------------------------------------------------------------
    def push(self, t: float, kind: int, key: str | int, token: int = 0) -> None:
        heapq.heappush(self.heap, (t, next(self.seq), kind, key, token))

    def arrive(self, tj: TraceJob, now: float) -> bool:
        # Specs are immutable and many jobs ask alike: one spec per distinct request.
        key = (tj.gpus, tj.time_limit_s, tj.project, tj.user, tj.qos)
        made = self.specs.get(key)
        if made is None:
            spec, shape, why, rounded = job_spec(tj, self.cluster, self.qos,
                                                 node_gpus=self.state.whole_gpn)
            made = self.specs[key] = (spec, shape, why, rounded, self._evictable(spec),
                                      self._usage_factor(spec))
        spec, shape, why, rounded, evictable, factor = made
        if shape is None:
            self.dropped[drop_reason(why)] += 1
            return False
        self.rounded += rounded
        job = Job(tj.job_id, spec, now)
        run = JobRun(tj, job, shape)
        run.evictable, run.rate = evictable, shape.gpus * factor
        self.active[job.id] = run
        self.waiting[job.id] = run
        self.tell(job.id, job)
        self.state.add_pending(shape)
        return True

    def tell(self, job_id: str, job: Job | None) -> None:
        """The builder is to learn ``job`` (None: to forget ``job_id``) before the next
        snapshot; a later change of the same job replaces this one."""
        untold = self.untold
        untold.pop(job_id, None)
        untold[job_id] = job

    def told(self) -> SnapshotBuilder:
        """The builder, told of every change so far."""
        builder = self.builder
        for job_id, job in self.untold.items():
            if job is None:
                builder.remove(job_id)
            else:
                builder.put(job)
        self.untold.clear()
        return builder

    def start(self, job_id: str, placement: tuple[tuple[int, int], ...], now: float, *,
              indexed: bool = False) -> None:
        """Start ``job_id`` with ``placement``'s GPUs on each node (by index); ``indexed``:
        the index of free GPUs has taken them already."""
        run = self.active[job_id]
        old = run.job
        check_transition(old.state, JobState.RUNNING)
        alloc, job_w = self.state.allocate_at(job_id, placement, run.shape)
        run.alloc, run.job_w = alloc, job_w
        free = self.free
        if free is not None and not indexed:
            for n, idx in alloc:
                free.change(n, -len(idx))
        names = self.state.names
        if len(alloc) == 1:  # most runs
            ((n, idx),) = alloc
            held: tuple[tuple[str, tuple[int, ...]], ...] = ((names[n], tuple(idx)),)
        else:
            held = tuple((names[n], tuple(idx)) for n, idx in alloc)
        # a new record, made directly: the hot path of every start
        run.job = job = Job(old.id, old.spec, old.submit_s, JobState.RUNNING, now, old.end_s,
                            held, old.held, old.exit_code, old.service_gpu_s, old.restarts)
        del self.waiting[job_id]
        self.tell(job_id, job)
        if run.first_start_s is None:
            run.first_start_s = now
        run.run_start_s = now
        self.running[job_id] = run
        self.evictable += run.evictable
        run.token += 1
        rate = run.rate
        if self.meter.kept:
            self.meter.started(job_id, job.spec.project, rate, now)
        if self.fair:
            self.charger.started(job_id, job.spec.project, job.spec.user, rate, now)
        limit = job.spec.time_limit_s
        if run.remaining_s <= limit:
            self.push(now + run.remaining_s, _END, job_id, run.token)
        else:
            self.push(now + limit, _TIMEOUT, job_id, run.token)

    def _stop_run(self, run: JobRun, now: float) -> None:
        """End the current run of ``run`` at ``now``: free its GPUs, account its work."""
        ran = now - run.run_start_s
        run.runtime_s += ran
        run.energy_j += run.job_w * ran
        run.remaining_s = max(0.0, run.remaining_s - ran) if self.resume \
            else run.trace.duration_s
        run.token += 1
        run.stopping = False
        self.state.release(run.job.id, run.alloc)
        if self.free is not None:
            for n, idx in run.alloc:
                self.free.change(n, len(idx))
        run.alloc = []
        if self.meter.kept:
            self.meter.stopped(run.job.id, now)
        del self.running[run.job.id]
        self.evictable -= run.evictable
        if self.fair:
            spec = run.job.spec
            self.charger.stopped(run.job.id, spec.project, spec.user, run.rate, now)

    def _evictable(self, spec: JobSpec) -> bool:
        return qos_named(self.qos, spec.qos).lets_evict(spec.preemptible)

    def _usage_factor(self, spec: JobSpec) -> float:
        return self.qos[spec.qos].usage_factor if spec.qos in self.qos else 1.0

    def finish(self, run: JobRun, state: JobState, now: float) -> None:
        job = run.job
        if job.state is JobState.RUNNING:
            self._stop_run(run, now)
        check_transition(job.state, state)
        del self.active[job.id]
        self.tell(job.id, None)
        if job.state is JobState.PENDING:
            self.state.remove_pending(run.shape)
            del self.waiting[job.id]
        first = run.first_start_s if run.first_start_s is not None else now
        self.records.append(JobRecord(
            job.id, job.spec.project, job.spec.user, run.shape.gpus, job.submit_s, first, now,
            state.value, run.runtime_s, job.spec.time_limit_s, run.preemptions, run.energy_j))
        if now >= self.makespan_s:
            # The integrals over [0, makespan]: an idle wait after the last end (for a
            # reservation window or a grant that never helps) must not count.
            self.makespan_s = now
            st = self.state
            self.integrals = (st.allocated_gpu_s, st.stranded_gpu_s, st.energy_j)

    def requeue(self, run: JobRun, via: JobState, now: float) -> None:
        """``run`` stops (PREEMPTED or NODE_FAIL) and goes back to PENDING."""
        job = run.job
        self.barrier = None  # a requeued job may lead the queue again
        self._stop_run(run, now)
        check_transition(check_transition(job.state, via), JobState.PENDING)
        run.job = replace(job, state=JobState.PENDING, start_s=None, allocation=(),
                          service_gpu_s=job.service_gpu_s + run.shape.gpus * (
                              now - run.run_start_s),
                          restarts=job.restarts + 1)
        self.tell(job.id, run.job)
        self.waiting[job.id] = run
        self.state.add_pending(run.shape)

    def handle(self, kind: int, key: str | int, token: int, now: float) -> bool:
        """Carry out one event; True if the state changed."""
        if kind <= _STOP:
            run = self.active.get(key) if isinstance(key, str) else None
            if run is None or run.token != token:
                return False  # stale: the run it belonged to has ended
            if kind == _END:
                self.finish(run, JobState.COMPLETED, now)
            elif kind == _TIMEOUT:
                self.finish(run, JobState.TIMEOUT, now)
            elif run.requeue:  # the end of a preemption's grace period
                run.preemptions += 1
                self.preemptions += 1
                self.requeue(run, JobState.PREEMPTED, now)
            else:
                run.preemptions += 1
                self.preemptions += 1
                self._stop_run(run, now)
                run.job = replace(run.job, state=check_transition(
                    run.job.state, JobState.PREEMPTED))
                self.finish(run, JobState.CANCELLED, now)
            return True
        if kind == _FAIL:
            assert isinstance(key, int)
            self.failures_seen += 1
            for job_id in sorted(self.state.jobs_on(key)):
                self.failed_runs += 1
                self.requeue(self.active[job_id], JobState.NODE_FAIL, now)
            self.cluster = self.state.set_down(key, True)
            self.told().set_cluster(self.cluster)
            if self.free is not None:
                self.free.set_up(key, False)
            self.repairs_pending += 1
            assert self.failures is not None
            self.push(now + float(self.rng.exponential(self.failures.mttr_s)), _REPAIR, key)
            return True
        if kind == _REPAIR:
            assert isinstance(key, int) and self.failures is not None
            self.cluster = self.state.set_down(key, False)
            self.told().set_cluster(self.cluster)
            if self.free is not None:
                self.free.set_up(key, self.state.schedulable[key])
            self.repairs_pending -= 1
            self.push(now + float(self.rng.exponential(self.failures.mtbf_s)), _FAIL, key)
            return True
        if kind == _GRANT:  # a grant becomes valid or expires: who may run changes
            self.grant_edges_pending -= 1
            self.barrier = None
            return True
        # a reservation window opens or closes: schedule its next edge
        assert isinstance(key, int)
        self.barrier = None  # who may run where changed
        self.windows_pending -= 1
        self.recurring_pending -= self.reservations[key].period_s is not None
        self._next_edge(key, now)
        return True

    def _next_edge(self, k: int, after: float) -> None:
        for ws, we in self.reservations[k].windows(after, math.inf):
            edge = ws if ws > after else we
            if edge > after:
                self.push(edge, _WINDOW, k)
                self.windows_pending += 1
                self.recurring_pending += self.reservations[k].period_s is not None
            return

    # -- the cycle ----------------------------------------------------------------------
    def cycle(self, now: float) -> int:
        """Run the core's cycle at ``now`` and carry out its decisions; the starts made."""
        if self.free is not None and len(self.waiting) == 1 and self.lone_start(now):
            return 1
        if self.shares is None:
            self.shares = fairshare(self.projects, self.ledger, self.shares_at, rows=False)
        meter = self.meter
        builder = self.told()
        tenancy: dict[str, Any] = {
            "reservations": self.reservations, "projects": self.projects,
            "fairshare_table": self.shares, "grants": meter.grants if meter.active else (),
            "charged_gpu_s": meter.charged_gpu_s(now) if meter.active else None}
        if self.free is not None and self.policy.backfill and not self._may_evict():
            # Decided from free GPUs if it makes no plan: the order needs no running job.
            pending_only = builder.build_pending(now, **tenancy)
            started = self.prefix_cycle(pending_only, now)
            if started is not None:
                return started
            snapshot = builder.build(now, **tenancy)
            share_order(pending_only, snapshot)
        else:
            snapshot = builder.build(now, **tenancy)
        # On the fast path nobody reads ETAs: plan only what the decisions depend on.
        result = run_cycle(snapshot, now, self.policy, carry=self.carry,
                           etas=self.free is None)
        if self.carry_plans:
            self.carry = result.carry
        self.cycles += 1
        self.barrier = None if self.policy.preemption else result.barrier
        if self.check:
            assert_invariants(snapshot, result)
        if meter.active:
            meter.observe(result, snapshot.grant_left_gpu_s, self._project_of)
        if self.on_cycle is not None:
            self.on_cycle(snapshot, result)
        index = self.state.index
        for s in result.starts:
            self.start(s.job_id, tuple((index[name], g) for name, g in s.placement.nodes), now)
        for p in result.preemptions:
            run = self.active.get(p.job_id)
            if run is None or run.job.state is not JobState.RUNNING or run.stopping:
                continue  # already leaving: the earlier signal stands
            run.stopping, run.requeue = True, p.requeue
            self.push(now + p.grace_s, _STOP, p.job_id, run.token)
        if self.check:
            self.state.check(self.active.values())
        return len(result.starts)

    def charge(self, now: float) -> None:
        """Charge the usage so far to the ledger, on the first cycle and then (if the policy
        orders by fair share) once a period: at every batch that changed the state while
        jobs wait, whether or not the cycle then runs, so that skipping a cycle that could
        decide nothing (:meth:`may_decide`) changes nothing."""
        if self.shares_at == -math.inf or (self.fair
                                           and now - self.shares_at >= PRIORITY_CALC_PERIOD_S):
            self.ledger = self.charger.charge_into(self.ledger, now)
            self.shares = None  # the factors of this ledger, made when a snapshot needs them
            self.shares_at = now

    def prefix_cycle(self, snapshot: Snapshot, now: float) -> int | None:
        """Carry out the cycle over ``snapshot`` (pending-only will do: the priority order
        reads no running job) if it makes no plan: the jobs it starts are
        a prefix of the priority order, placed by the index of free GPUs
        (:func:`gefion.core.prefix.plain_prefix`); the starts made, or None if the cycle
        must run (it would plan, or a pending job is not plain)."""
        assert self.free is not None
        cols = pending_columns(snapshot)
        _, order = priority_order(self.policy, snapshot, now)
        starts = plain_prefix(order, cols, self.free)
        if starts is None:
            return None
        self.cycles += 1
        self.barrier = self.carry = None  # no plan was made
        for i, nodes in starts:
            g = int(cols.gpus_per_node[i])
            self.start(cols.ids[i], tuple((n, g) for n in nodes), now, indexed=True)
        return len(starts)

    def lone_start(self, now: float) -> bool:
        """Start the only pending job where the core's cycle would, if it fits now: in a
        plain setting (core.strict.plain_body) ``run_cycle`` starts a lone plain job where
        ``choose_nodes`` places it among the up nodes with its GPUs free, under any
        policy, and decides nothing else. False if it does not fit (the cycle must run)."""
        assert self.free is not None
        (run,) = self.waiting.values()
        shape = run.shape
        nodes = self.free.place(shape.nodes, shape.gpus_per_node)
        if nodes is None:
            return False
        self.cycles += 1
        self.barrier = self.carry = None  # all started; the plans of before are gone
        self.start(run.job.id, tuple((n, shape.gpus_per_node) for n in nodes), now)
        return True

    def _project_of(self, job_id: str) -> str:
        run = self.active.get(job_id)
        return run.job.spec.project if run is not None else ""

    def may_decide(self) -> bool:
        """False only when the cycle provably decides nothing: no preemption is possible
        (nothing runs, or the policy evicts only jobs marked preemptible and none runs)
        and no pending shape fits the free GPUs (nor a 0-GPU job) — or, under a strict
        policy, the head of the queue the last cycle named as its barrier does not fit."""
        if self.state.pending_count == 0:
            return False
        if self._may_evict():
            return True
        if self.barrier is not None and self.barrier[0] in self.active:
            # The core's word: the head of a strict queue that does not fit holds back all.
            _, count, gpus = self.barrier
            return self.state.fits(count, gpus)
        return self.state.any_pending_fits()

    def _may_evict(self) -> bool:
        """Whether the cycle may preempt: the policy preempts, something runs, and the
        policy evicts anyone or some running job is marked preemptible."""
        return bool(self.preempts and self.state.running_count and (
            self.evictable or self.evicts_any))

    # -- the loop -----------------------------------------------------------------------
    def run(self, progress: Callable[[float, float], None] | None,
            max_events: int | None) -> None:
        arrivals = self.trace.jobs
        n, i = len(arrivals), 0
        heap, state = self.heap, self.state
        if self.failures is not None:
            for k in state.failable():
                self.push(float(self.rng.exponential(self.failures.mtbf_s)), _FAIL, k)
        # edges from just before the first event (a recurring window has no first edge)
        origin = min(0.0, arrivals[0].submit_s if n else 0.0) - 1.0
        for k in range(len(self.reservations)):
            self._next_edge(k, origin)
        for t in self.meter.edges():
            self.push(t, _GRANT, -1)
            self.grant_edges_pending += 1
        batches = 0
        now = 0.0
        stop = _IDLE
        # the hot loop's look-ups, once
        arrive, handle, charge, may_decide, cycle = \
            self.arrive, self.handle, self.charge, self.may_decide, self.cycle
        advance, sample, heappop = state.advance, state.sample, heapq.heappop
        events = self.events
        while i < n or self.active:
            if i < n:
                now = arrivals[i].submit_s
                if heap and heap[0][0] < now:
                    now = heap[0][0]
            elif heap:
                now = heap[0][0]
            else:
                break
            advance(now)
            changed = False
            while i < n and arrivals[i].submit_s <= now:
                changed |= arrive(arrivals[i], now)
                i += 1
                events += 1
            while heap and heap[0][0] <= now:
                _, _, kind, key, token = heappop(heap)
                events += 1
                changed |= handle(kind, key, token, now)
            started = 0
            if changed:
                if state.pending_count:
                    charge(now)
                if may_decide():
                    started = cycle(now)
                else:
                    self.skipped += 1
            sample(now)
            batches += 1
            if progress is not None and batches % _PROGRESS_EVERY == 0:
                progress(float(len(self.records)), float(n))
            if max_events is not None and events >= max_events:
                stop = "unfinished: max_events reached"
                break
            if i == n and self.active and not started and state.running_count == 0 \
                    and not self.repairs_pending and not self.grant_edges_pending:
                if self.idle_since is None:
                    self.idle_since = now
                one_off = self.windows_pending - self.recurring_pending
                if not one_off and (not self.recurring_pending
                                    or now - self.idle_since > self.idle_patience_s):
                    break  # pending jobs on an idle cluster, and nothing left to change that
            else:
                self.idle_since = None
        self.events = events
        if n - i:  # counted, so that no job is lost silently
            self.dropped[stop] += n - i
        if self.active:
            self._count_left(stop, now)
        if progress is not None:
            progress(float(len(self.records)), float(n))

    def _count_left(self, stop: str, now: float) -> None:
        """Count the jobs still active when the run stopped at ``now``; on an idle
        cluster, those of a project without grant hours left are counted as such."""
        if stop != _IDLE or not self.meter.active:
            self.dropped[stop] += len(self.active)
            return
        left = grant_balances(self.projects, self.meter.grants,
                              self.meter.charged_gpu_s(now), now)
        for run in self.active.values():
            if run.job.state is JobState.PENDING and left.get(run.job.spec.project, 1.0) <= 0:
                self.dropped["never started: no grant hours left"] += 1
            else:
                self.dropped[stop] += 1

    def result(self, load: float, wall_s: float) -> SimResult:
        shares = {name: p.shares for name, p in self.projects.items()}
        for r in self.records:
            shares.setdefault(r.project, 1.0)
        state = self.state
        return SimResult(
            trace=self.trace.name, cluster=self.cluster.name, policy=self.policy.name,
            seed=self.seed, load=load, total_gpus=state.total_gpus,
            jobs=tuple(sorted(self.records, key=_submit_order)),
            samples=state.log.samples(), makespan_s=self.makespan_s,
            preemptions=self.preemptions, cycles=self.cycles, events=self.events,
            dropped=dict(sorted(self.dropped.items())), wall_s=wall_s,
            cycles_skipped=self.skipped, rounded_up=self.rounded,
            node_failures=self.failures_seen, failed_runs=self.failed_runs,
            allocated_gpu_s=self.integrals[0], stranded_gpu_s=self.integrals[1],
            energy_j=self.integrals[2], project_shares=dict(sorted(shares.items())),
            sample_every_s=state.sample_every_s, grants=self.meter.grants,
            grant_charges=self.meter.charge_log(), grant_held_jobs=self.meter.held_jobs(),
            sensitive=tuple(sorted(p for p, proj in self.projects.items() if proj.sensitive)))


_submit_order = operator.attrgetter("submit_s", "job_id")


_LOAD = re.compile(r"workload model seed=\d+ load=([0-9.eE+-]+)")


def _load_of(trace: Trace) -> float:
    found = _LOAD.findall(trace.source)
    return float(found[-1]) if found else 1.0


def simulate(trace: Trace, cluster: Cluster, policy: Policy, *, seed: int = 0,
             reservations: Iterable[Reservation] = (),
             projects: Mapping[str, Project] | None = None,
             qos: Mapping[str, QOS] | None = None, failures: FailureModel | None = None,
             check_invariants: bool = False,
             progress: Callable[[float, float], None] | None = None,
             max_events: int | None = None, power: PowerModel = DGX_H100,
             resume: bool = True, sample_every_s: float | None = None,
             load: float | None = None, grants: Iterable[Grant] = (),
             usage_gpu_s: Mapping[str, float] | None = None,
             on_cycle: CycleHook | None = None, carry_plans: bool = True,
             fast_path: bool = True) -> SimResult:
    """Replay ``trace`` on ``cluster`` under ``policy``; deterministic for a given ``seed``.

    Every trace job needs a time limit (the workload model fills them). ``qos`` defaults to
    :data:`TWIN_QOS`. ``failures`` turns node failures on (seeded by ``seed``).
    ``check_invariants`` checks the core's invariants after every cycle and the engine's
    own (no GPU index allocated twice, gangs whole) after every event batch.
    ``progress(jobs_ended, jobs_total)`` is called every few thousand event batches.
    ``max_events`` stops a run after the event batch that reaches it (the jobs left are
    counted in ``dropped``).
    ``resume``: a requeued job continues where it stopped (its remaining true runtime
    shrinks by what it ran, as in Tiresias); False: it starts over. ``sample_every_s``
    thins samples (default: the trace's span / 20,000). ``load`` is recorded in the result
    (default: read from the workload model's note in ``trace.source``, else 1.0).
    ``grants`` are GPU-hour grants of the ``projects``; a ``metered`` project's jobs start
    only while it has hours left (:mod:`gefion.twin.metering`); ``usage_gpu_s`` is what each
    project had already charged at time 0. ``on_cycle(snapshot, result)`` hears every
    cycle (see :data:`CycleHook`). ``carry_plans`` passes each cycle's plans to the next,
    which reuses those it can prove unchanged (:mod:`gefion.core.carry`); False plans
    afresh every cycle, with the same results (a test holds the two to it).
    ``fast_path``: where the setting is plain (no hook, no invariant checks,
    :func:`gefion.core.strict.plain_body`), decide from state kept between cycles — strict
    FIFO without snapshots (:mod:`gefion.twin.fastpath`), a lone pending job from the index
    of free GPUs — with the same result; False always builds a snapshot and runs
    ``run_cycle`` (tests compare the two).
    """
    if max_events is not None and max_events < 1:
        raise InputError(f"must be >= 1, got {max_events}", field="max_events")
    if sample_every_s is None:
        sample_every_s = trace.span_s / 20_000.0
    began = time.perf_counter()
    projects = dict(projects or {})
    table = dict(qos) if qos is not None else dict(TWIN_QOS)
    meter = GrantMeter(grants, projects, usage_gpu_s)
    booked = tuple(reservations)
    # State kept between cycles: only where nobody reads a cycle's snapshot or reasons,
    # and the setting lets a plain job's start depend on the free GPUs alone.
    kept = fast_path and on_cycle is None and not check_invariants and \
        policy.placement in PLACEMENTS and plain_body(
            projects=projects, qos=table, reservations=len(booked), grants=bool(meter.kept))
    engine_class = _Engine
    if kept and failures is None and strict_policy(policy):
        from gefion.twin.fastpath import StrictEngine  # it imports this module

        engine_class = StrictEngine
    engine = engine_class(trace, cluster, policy, seed=seed, reservations=booked,
                          projects=projects, qos=table, failures=failures, power=power,
                          resume=resume, check=check_invariants,
                          sample_every_s=max(0.0, sample_every_s), meter=meter,
                          on_cycle=on_cycle, carry_plans=carry_plans, fast_path=kept)
    with paused_gc():  # millions of short-lived records, none in a cycle
        engine.run(progress, max_events)
    return engine.result(_load_of(trace) if load is None else load,
                         time.perf_counter() - began)
