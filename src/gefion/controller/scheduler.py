"""The controller's scheduling loop: events in, the core's one cycle, decisions out.

Each step, on the wall clock:

0. **nodes** — nodes the executor saw leave or come back (a lost Ray node) become
   ``node.down`` / ``node.up`` events, before the exits that the loss caused;
1. **exits** — jobs that ended (the executor's supervisors say how) become events; a gang
   that lost a node ends NODE_FAIL and is requeued if it may be (``--requeue``, or by
   default when its QOS is preemptible);
2. **sync** — every event since the last step (API submissions, cancels, holds, node
   drains, and this loop's own writes) updates the in-memory view: the job rows that are
   active, the :class:`~gefion.core.builder.SnapshotBuilder`, the GPU indices in use, and
   the tenancy (usage folded from job events; tables read again after a tenancy event);
3. **cycle** — ``run_cycle(builder.build(now, ...), now, policy)``, exactly as the twin
   calls it, with the tenancy of :mod:`gefion.controller.tenancy` (projects, QOS, grants
   and what each project has been charged, reservations, fair-share factors);
4. **apply** — starts are committed as ``job.started`` events (with the GPU indices chosen
   here) *before* the executor launches them; preemptions go to the executor;
5. **publish** — reasons and ETAs of pending jobs go to the store's queue view.

Steps run when something happened (an API call wakes the loop; a supervisor's datagram
wakes it through a watcher thread), coalesced, and at least every ``refresh_s``. A busy loop
is paced: after a step that took ``d`` seconds the next waits ``d × pace`` first, so the
wake-ups of that time are served by one step and the loop leaves the API most of the CPU
(Slurm's ``sched_min_interval``, but proportional: an idle queue's steps of a millisecond
are not slowed at all). The time a step spends waiting for the executor to launch jobs
does not count: a step that starts a hundred jobs waits on the file system and on their
supervisors, and resting after it would only delay the exits that came meanwhile. (Its
waits for the database do count: pacing them coalesces submissions into fewer steps.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from gefion.controller.gpus import GpuMap
from gefion.controller.launch import launch_spec
from gefion.controller.submission import with_array_id
from gefion.controller.telemetry import RunningJob, Sampler
from gefion.controller.tenancy import Tenancy
from gefion.core.builder import SnapshotBuilder
from gefion.core.carry import PlanCarry
from gefion.core.cycle import run_cycle
from gefion.core.decisions import CycleResult, PendingReason
from gefion.core.errors import GefionError
from gefion.core.jobs import Job, JobState
from gefion.core.policies.base import Policy
from gefion.core.priority import rounded_factors
from gefion.core.topology import Cluster, NodeState
from gefion.executor import ExecutorError, JobExit
from gefion.executor.base import Executor, NodeChange
from gefion.executor.local import NEVER_STARTED
from gefion.store import EventKind, EventRow, JobRow, NewEvent, SchedulingInfo, Store
from gefion.store import apply as apply_event
from gefion.store.records import Allocation

log = logging.getLogger("gefion.controller")

_ACTIVE = (JobState.PENDING, JobState.RUNNING)
_MIN_REST_S = 0.001  # steps quicker than this are not paced
_MAX_REST_S = 1.0
T = TypeVar("T")


class Scheduler:
    """One controller's loop. ``step()`` is the whole of it; ``start()`` runs it in a thread."""

    #: The telemetry sampler, told of every run's end; its energy goes into the end event.
    sampler: Sampler | None = None

    def __init__(self, store: Store, executor: Executor, cluster: Cluster,
                 policy: Policy, *, kill_grace_s: int, refresh_s: float = 30.0,
                 pace: float = 1.0, clock: Callable[[], float] = time.time,
                 tenancy: Tenancy | None = None) -> None:
        self.store, self.executor, self.policy = store, executor, policy
        self.cluster = cluster
        self.kill_grace_s, self.refresh_s, self.pace = kill_grace_s, refresh_s, pace
        self.last_step_s = 0.0  # wall seconds the last step took, launches aside
        self._launching_s = 0.0  # of this step, waiting for the executor to launch jobs
        self.clock = clock
        #: projects, QOS, grants, reservations and usage (controller/tenancy.py)
        self.tenancy = tenancy if tenancy is not None else Tenancy()
        self.builder = SnapshotBuilder(cluster, qos=self.tenancy.tables.qos)
        self.rows: dict[int, JobRow] = {}  # PENDING and RUNNING jobs, as stored
        self.gpus = GpuMap({n.name: n.gpus for n in cluster.nodes})
        self.known: set[int] = set()  # job ids whose state the builder holds
        self.preempting: dict[int, bool] = {}  # job id → requeue after the eviction
        self.seen_seq = 0
        self.last_result: CycleResult | None = None
        self.cycles = 0
        # job id (as the core names it) → (reason, planned start) last published
        self._published: dict[str, tuple[PendingReason, float | None]] = {}
        self._applied: dict[int, bool] = {}  # seqs of events already applied in memory
        self._wake = threading.Event()
        self._carry: PlanCarry | None = None
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------------------------
    def load(self) -> list[int]:
        """Start from the store and re-attach to running jobs; the ids re-attached."""
        with self._lock:
            self.seen_seq = self.store.last_seq()
            self._sync_nodes()
            self.tenancy.load(self.store, self.seen_seq)  # usage: the log up to here
            self.builder.set_qos(self.tenancy.tables.qos)
            self.tenancy.update_exhausted(self.clock())
            for row in self.store.active_jobs():
                self._track(row)
            alive = set(self.executor.reattach())
            watched = set(self.executor.active)
            lost = [row for row in self.rows.values()
                    if row.state is JobState.RUNNING and row.id not in watched]
            now = self.clock()
            for row in lost:  # committed as started, but its launch never happened
                self._write(self._relaunch_events(
                    row.id, now, "the controller stopped before the job was launched"))
            return sorted(alive)

    def start(self) -> None:
        for target, name in ((self._loop, "gefion-scheduler"), (self._watch, "gefion-exits")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    def wake(self) -> None:
        """Something changed: run a step soon (coalesced with other wake-ups)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.refresh_s)
            rest = min(self.last_step_s * self.pace, _MAX_REST_S)
            if rest > _MIN_REST_S:  # coalesce what comes meanwhile into the next step
                self._stopping.wait(rest)
            self._wake.clear()
            if self._stopping.is_set():
                break
            began = time.perf_counter()
            self._launching_s = 0.0
            try:
                self.step()
            except Exception:  # keep scheduling; the next step starts from the store again
                log.exception("scheduler step failed")
                time.sleep(0.1)
            self.last_step_s = time.perf_counter() - began - self._launching_s

    def _watch(self) -> None:
        while not self._stopping.is_set():
            if self.executor.wait(0.5):
                self._wake.set()

    # -- one step ---------------------------------------------------------------------------
    def step(self) -> CycleResult:
        with self._lock:
            now = self.clock()
            self._node_events(self.executor.node_changes(), now)
            self._reap(self.executor.poll(), now)
            self._sync()
            self._regrade(now)
            snapshot = self.builder.build(now, **self.tenancy.snapshot_args(now))
            result = run_cycle(snapshot, now, self.policy, carry=self._carry)
            self._carry = result.carry  # plans the next step may reuse (core/carry.py)
            self.cycles += 1
            self._apply(result, now)
            self._publish(result)
            self.last_result = result
            return result

    def cancel_running(self, job_id: int) -> None:
        """Ask the executor to end a running job; its end becomes an event when it comes."""
        with self._lock:
            self.executor.cancel(job_id)

    # -- nodes ------------------------------------------------------------------------------
    def _node_events(self, changes: list[NodeChange], now: float) -> None:
        """A node the executor lost goes DOWN; one that is back comes UP (only from DOWN:
        a drain is the operator's, and stays until resumed)."""
        events = []
        for change in changes:
            if not self.cluster.has_node(change.node):
                continue
            state = self.node_state(change.node)
            if not change.up and state is not NodeState.DOWN:
                events.append(NewEvent(EventKind.NODE_DOWN, now, node=change.node,
                                       payload={"reason": change.reason or "lost"}))
            elif change.up and state is NodeState.DOWN:
                events.append(NewEvent(EventKind.NODE_UP, now, node=change.node,
                                       payload={"reason": change.reason}))
        if events:
            self._write(events)
            for event in events:
                log.warning("node %s %s: %s", event.node,
                            "down" if event.kind is EventKind.NODE_DOWN else "up",
                            event.payload.get("reason"))

    # -- exits ------------------------------------------------------------------------------
    def _reap(self, exits: list[JobExit], now: float) -> None:
        """Record the exits of a poll in one transaction (one commit, not one a job); if
        the store refuses it (a job that had already ended there), each alone."""
        if not exits:
            return
        ends = [(end, self._exit_events(end)) for end in exits]
        try:
            self._write([event for _, events in ends for event in events])
        except GefionError:
            for end, events in ends:
                try:
                    self._write(events)
                except GefionError as exc:  # already ended in the store
                    log.warning("exit of job %s not recorded: %s", end.job_id, exc)
        for end in exits:
            self.executor.acknowledge(end.job_id)

    def _exit_events(self, end: JobExit) -> list[NewEvent]:
        info: dict[str, Any] = {"exit_code": end.exit_code, "signal": end.signal}
        if end.reason:
            info["reason"] = end.reason
        job_id, ts = end.job_id, end.end_ts
        row = self.rows.get(job_id)
        if self.sampler is not None and row is not None and row.state is JobState.RUNNING:
            info.update(self.sampler.run_ended(job_id, ts, row.start_ts, row.allocation))
        if end.reason == NEVER_STARTED:  # nothing ran: start it again, as Slurm requeues
            return self._relaunch_events(job_id, ts, end.reason)
        if end.state is JobState.NODE_FAIL:  # a node of the gang was lost
            self.preempting.pop(job_id, None)
            events = []
            stored = self.store.get_node(end.node) if end.node is not None and \
                self.cluster.has_node(end.node) else None
            if stored is not None and stored.state is not NodeState.DOWN:
                # The executor may report the gang's loss a step before its node table
                # reports the node: mark it down now, or the requeued job could be placed
                # on it again. The node comes back UP when the executor sees it again.
                events.append(NewEvent(EventKind.NODE_DOWN, ts, node=end.node,
                                       payload={"reason": end.reason or "lost"}))
            events.append(NewEvent(EventKind.JOB_NODE_FAIL, ts, job_id=job_id, node=end.node,
                                   payload=info))
            if self._requeues_after_failure(job_id):
                events.append(NewEvent(EventKind.JOB_REQUEUED, ts, job_id=job_id))
            return events
        if end.state is JobState.CANCELLED:
            return [NewEvent(EventKind.JOB_CANCELLED, ts, job_id=job_id, payload=info)]
        if end.state is JobState.PREEMPTED:
            requeue = self.preempting.pop(job_id, self._requeues(job_id))
            return [NewEvent(EventKind.JOB_PREEMPTED, ts, job_id=job_id, payload=info),
                    NewEvent(EventKind.JOB_REQUEUED if requeue else EventKind.JOB_CANCELLED,
                             ts, job_id=job_id)]
        return [NewEvent(EventKind.JOB_FINISHED, ts, job_id=job_id,
                         payload={**info, "state": end.state.value})]

    @staticmethod
    def _relaunch_events(job_id: int, ts: float, reason: str) -> list[NewEvent]:
        """A job committed as started whose script never ran goes back to the queue."""
        return [NewEvent(EventKind.JOB_NODE_FAIL, ts, job_id=job_id,
                         payload={"reason": f"launch failed: {reason}"}),
                NewEvent(EventKind.JOB_REQUEUED, ts, job_id=job_id)]

    def _requeues(self, job_id: int) -> bool:
        row = self.rows.get(job_id)
        return bool(row is not None and row.spec.get("requeue"))

    def _requeues_after_failure(self, job_id: int) -> bool:
        """``--requeue``/``--no-requeue`` if given, else the QOS's rule (a preemptible QOS
        requeues), as Slurm's JobRequeue default does for a failed node."""
        row = self.rows.get(job_id)
        if row is None:
            return False
        asked = row.spec.get("requeue")
        if asked is not None:
            return bool(asked)
        return self.tenancy.tables.qos_of(self.tenancy.effective_qos(row)).requeues

    # -- the in-memory view -----------------------------------------------------------------
    def _write(self, events: list[NewEvent]) -> None:
        self.store.append(events)

    def _sync(self) -> None:
        """Apply every event since the last step to the in-memory view, with the store's own
        projection function (no query per job); events this loop already applied in memory
        (its starts) are skipped."""
        nodes = False
        while True:
            batch = self.store.events_since(self.seen_seq, limit=10_000)
            if not batch:
                break
            self.seen_seq = batch[-1].seq
            for event in batch:
                self.tenancy.observe(event)
                if event.job_id is not None:
                    if self._applied.pop(event.seq, None) is None:
                        self._sync_job(event)
                elif event.kind.startswith("node."):
                    nodes = True
        if nodes:
            self._sync_nodes()
        if self.tenancy.refresh(self.store):  # projects, QOS, grants or reservations changed
            self.builder.set_qos(self.tenancy.tables.qos)

    def _sync_job(self, event: EventRow) -> None:
        assert event.job_id is not None
        row = self.rows.get(event.job_id)
        if row is None and event.row is not None:  # submitted here: the writer's row
            self._track(event.row)
            return
        if row is None and event.kind != EventKind.JOB_SUBMITTED:
            fresh = self.store.get_job(event.job_id)  # a job not active here: the store knows
            if fresh is not None:
                self._track(fresh)
            return
        try:
            self._track(apply_event(event, row))
        except GefionError:  # the view drifted from the log: take the store's word
            fresh = self.store.get_job(event.job_id)
            if fresh is not None:
                self._track(fresh)

    def _sync_nodes(self) -> None:
        states = {n.name: n.state for n in self.store.list_nodes()
                  if self.cluster.has_node(n.name)}
        cluster = self.cluster.with_states(states)
        if [n.state for n in cluster.nodes] != [n.state for n in self.cluster.nodes]:
            self.cluster = cluster
            self.builder.set_cluster(cluster)

    def _track(self, row: JobRow) -> None:
        old = self.rows.get(row.id)
        if old is not None and old.state is JobState.RUNNING:
            self.gpus.give(old.allocation)
        if row.state is JobState.RUNNING:
            self.gpus.take(row.allocation)
        job = self._job_of(row)
        self.builder.put(job)
        self.known.add(row.id)
        if row.state in _ACTIVE:
            self.rows[row.id] = row
            for dep in job.spec.depends_on:  # dependencies need the state of what they name
                if dep.job_id is not None and dep.job_id.isdigit() and \
                        int(dep.job_id) not in self.known:
                    target = self.store.get_job(int(dep.job_id))
                    if target is not None:
                        self._track(target)
        else:
            self.rows.pop(row.id, None)
            self._published.pop(str(row.id), None)

    def _job_of(self, row: JobRow) -> Job:
        """The core's record of ``row``: array tasks know their array, and a job runs (or
        would start) in its effective QOS (the grant fallback's, see controller/tenancy.py)."""
        job = row.to_job()
        spec = with_array_id(job.spec, row.array_job_id)
        qos = self.tenancy.effective_qos(row)
        if qos != spec.qos:
            spec = replace(spec, qos=qos)
        return replace(job, spec=spec) if spec is not job.spec else job

    def _regrade(self, now: float) -> None:
        """Projects that ran out of grant hours, or got new ones, under a grant fallback
        QOS: their pending jobs are handed to the core in their new effective QOS."""
        changed = self.tenancy.update_exhausted(now)
        if changed:
            for row in self.rows.values():
                if row.state is JobState.PENDING and row.project in changed:
                    self.builder.put(self._job_of(row))

    # -- decisions --------------------------------------------------------------------------
    def _apply(self, result: CycleResult, now: float) -> None:
        started: list[tuple[JobRow, tuple[tuple[str, tuple[int, ...]], ...]]] = []
        for start in result.starts:
            row = self.rows[int(start.job_id)]
            allocation = self.gpus.assign(start.placement.nodes)
            started.append((row, allocation))
        if started:
            seqs = self.store.append([NewEvent(EventKind.JOB_STARTED, now, job_id=row.id,
                                               payload=self._start_payload(row, allocation))
                                      for row, allocation in started])
            self._applied.update(dict.fromkeys(seqs, True))  # tracked below, in memory
        launches, rows = [], []
        for row, allocation in started:
            running = replace(row, state=JobState.RUNNING, start_ts=now, allocation=allocation)
            self.gpus.give(allocation)  # _track takes them again, once
            self._track(running)
            try:
                launches.append(launch_spec(
                    running, kill_grace_s=self.kill_grace_s,
                    private_output=self.tenancy.is_sensitive(running.project)))
                rows.append(running)
            except GefionError as exc:
                self._launch_failed(row.id, exc)
        if launches:
            began = time.perf_counter()
            errors = self.executor.launch_many(launches)
            self._launching_s += time.perf_counter() - began
            for row, error in zip(rows, errors, strict=True):
                if error is not None:
                    self._launch_failed(row.id, error)
        for p in result.preemptions:
            job_id = int(p.job_id)
            if job_id in self.preempting:
                continue  # already leaving: the earlier signal stands
            self.preempting[job_id] = p.requeue
            try:
                self.executor.preempt(job_id, p.grace_s)
            except ExecutorError as exc:
                log.warning("job %s could not be preempted: %s", job_id, exc)

    def _start_payload(self, row: JobRow, allocation: Allocation) -> dict[str, Any]:
        """``job.started``: the GPUs, and the QOS the run is in when it is not the job's own
        (the grant fallback's): what the run is charged at, and preemptible by."""
        payload: dict[str, Any] = {"allocation": {node: list(idx) for node, idx in allocation}}
        qos = self.tenancy.effective_qos(row)
        if qos != row.qos:
            payload["qos"] = qos
        return payload

    def _launch_failed(self, job_id: int, exc: Exception) -> None:
        log.warning("job %s could not be launched: %s", job_id, exc)
        self._write([NewEvent(EventKind.JOB_FINISHED, self.clock(), job_id=job_id,
                              payload={"exit_code": 1, "state": "FAILED",
                                       "reason": f"launch failed: {exc}"})])

    def _publish(self, result: CycleResult) -> None:
        """Queue view: reason and ETA of every pending job whose view changed."""
        views: list[tuple[str, PendingReason, float | None]] = []
        published = self._published
        for job_id, reason, planned in result.views():  # the hot loop of a long queue
            view = (reason, planned)
            if published.get(job_id) != view:
                published[job_id] = view
                views.append((job_id, reason, planned))
        if not views:
            return
        factors = rounded_factors(result.factors, [job_id for job_id, _, _ in views])
        changed: list[SchedulingInfo] = [
            (int(job_id), reason.value, planned, f)
            for (job_id, reason, planned), f in zip(views, factors, strict=True)]
        try:
            self.store.set_scheduling_info(changed)
        except GefionError as exc:  # a job that ended meanwhile
            log.debug("queue view not updated: %s", exc)

    # -- views for the API ------------------------------------------------------------------
    def with_tenancy(self, read: Callable[[Tenancy, float], T]) -> T:
        """``read(tenancy, now)`` under the loop's lock: a consistent view for the API."""
        with self._lock:
            return read(self.tenancy, self.clock())

    def running_jobs(self) -> dict[int, RunningJob]:
        """Running jobs now: when their run started, which GPUs they hold (telemetry)."""
        with self._lock:
            return {r.id: RunningJob(r.start_ts, r.allocation, r.project)
                    for r in self.rows.values()
                    if r.state is JobState.RUNNING and r.start_ts is not None}

    def node_usage(self) -> dict[str, int]:
        """GPUs allocated per node now."""
        with self._lock:
            return {node: len(used) for node, used in self.gpus.used.items()}

    def node_state(self, name: str) -> NodeState:
        return self.cluster.nodes[self.cluster.index_of(name)].state
