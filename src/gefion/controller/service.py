"""The controller as the API and the CLI see it: one object, thread-safe, every call a
validated request that is committed to the store before it returns.

::

    controller = Controller(ControllerConfig(data_dir=...)); controller.start()
    ids = controller.submit(SubmitRequest(user="ana", cwd="/home/ana", script=text))
    controller.get_job(ids[0]); controller.cancel(ids[0], by="ana"); controller.stop()
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gefion.controller.config import ControllerConfig
from gefion.controller.gpureader import NvmlReader
from gefion.controller.launch import output_paths
from gefion.controller.node import emulated_cluster, local_cluster
from gefion.controller.scheduler import Scheduler
from gefion.controller.standing import (
    GrantStanding,
    ShareView,
    grant_standing,
    grant_standings,
    share_view,
)
from gefion.controller.submission import (
    BatchMemo,
    SubmitRequest,
    check_account,
    new_jobs,
    parse_request,
)
from gefion.controller.telemetry import Sampler
from gefion.controller.tenancy import NodeMarks, Tenancy, fallback_problem, node_marks
from gefion.core.errors import InputError, StateError
from gefion.core.jobs import JobState
from gefion.core.policies import get_policy
from gefion.core.priority import factor_dict
from gefion.core.tenancy import DEFAULT_QOS
from gefion.core.topology import NodeState
from gefion.executor import Executor, LocalExecutor
from gefion.slurm import Site, Submission
from gefion.store import EventKind, EventRow, JobRow, NewEvent, NewJob, NotFoundError, Store

if TYPE_CHECKING:
    from gefion.controller.raybody import RayBody

log = logging.getLogger("gefion.controller")
#: The telemetry sampler's checkpoint of running jobs' energy, in the data directory.
TELEMETRY_CHECKPOINT = "telemetry.json"
NO_MARKS = NodeMarks()


@dataclass(frozen=True)
class NodeView:
    name: str
    gpus: int
    su: str
    state: str  # idle, mixed, allocated, drained, down, maint
    reason: str | None
    gpus_allocated: int
    reservation: str | None = None  # the reservation whose window is open on it now
    maint_start_ts: float | None = None  # its current or next maintenance window's start


class Controller:
    """Store + scheduler loop + executor: for one host (the local executor), or for the
    nodes of a Ray cluster (``config.executor == "ray"``)."""

    def __init__(self, config: ControllerConfig, *, clock: Any = None) -> None:
        self.config = config
        self.ray: RayBody | None = None
        if config.executor == "ray":  # the cluster is Ray's nodes: connect now to learn them
            from gefion.controller.raybody import RayBody

            self.ray = RayBody.open(config)
            self.cluster, self.emulated = self.ray.cluster, False
        else:
            self.cluster, self.emulated = emulated_cluster(config.cluster) if config.cluster \
                else local_cluster(config.node_name, config.emulate_gpus)
        self.policy = get_policy(config.policy)
        self.site = Site(node_gpus=self.cluster.max_gpus_per_node,
                         node_names=self.cluster.names)
        self.store: Store | None = None
        self.executor: Executor | None = None
        self.scheduler: Scheduler | None = None
        self.sampler: Sampler | None = None  # telemetry (docs/telemetry.md)
        self._clock = clock
        self._qos_site: tuple[int, Site] = (-1, self.site)  # (tenancy version, site)

    # -- life cycle -------------------------------------------------------------------------
    def start(self, *, loop: bool = True) -> list[int]:
        """Open the store, register this node, re-attach to running jobs, start the loop
        (``loop=False``: tests call ``step()`` themselves). Returns re-attached job ids."""
        cfg = self.config
        for path in (cfg.data_dir, cfg.run_dir, cfg.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.store = Store.open(cfg.database_url)
        self.executor = self.ray.executor(cfg.run_dir) if self.ray is not None \
            else LocalExecutor(cfg.run_dir)
        now = self.now()
        known = {n.name for n in self.store.list_nodes()}
        self.store.append([NewEvent(EventKind.NODE_REGISTERED, now, node=n.name,
                                    payload={"gpus": n.gpus, "su": n.su})
                           for n in self.cluster.nodes if n.name not in known])
        kw: dict[str, Any] = {"kill_grace_s": cfg.kill_grace_s, "refresh_s": cfg.refresh_s}
        if self._clock is not None:
            kw["clock"] = self._clock
        tenancy = Tenancy(half_life_s=cfg.fairshare_half_life_s,
                          calc_period_s=cfg.priority_calc_period_s,
                          fallback_qos=cfg.grant_fallback_qos)
        self.scheduler = Scheduler(self.store, self.executor, self.cluster, self.policy,
                                   tenancy=tenancy, **kw)
        alive = self.scheduler.load()
        if cfg.grant_fallback_qos is not None:
            problem = fallback_problem(tenancy.tables, cfg.grant_fallback_qos)
            if problem is not None:
                self.stop()
                raise InputError(problem, field="grant_fallback_qos")
        self._start_sampler(loop)
        if loop:
            self.scheduler.start()
            self.scheduler.wake()
        return alive

    def stop(self) -> None:
        """Stop scheduling and let go of the store. Running jobs go on under their
        supervisors; the next start re-attaches to them."""
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.sampler is not None:
            self.sampler.stop()
        if self.executor is not None:
            self.executor.close()
        if self.store is not None:
            self.store.close()
        if self.ray is not None:
            self.ray.close()

    def _start_sampler(self, loop: bool) -> None:
        """The telemetry sampler: NVML for this host's real GPUs, the power model for
        emulated ones and for a Ray cluster's nodes (``loop=False``: tests call
        ``sampler.sample()`` themselves, and may set ``sampler.reader``)."""
        cfg, scheduler = self.config, self._sched()
        reader = None if self.emulated or self.ray is not None \
            else NvmlReader.open(cfg.node_name)
        self.sampler = Sampler(nodes=lambda: scheduler.cluster.nodes,
                               running=scheduler.running_jobs, reader=reader, clock=self.now,
                               sample_s=cfg.sample_s, idle_util_pct=cfg.idle_util_pct,
                               idle_after_s=cfg.idle_after_s,
                               checkpoint=cfg.data_dir / TELEMETRY_CHECKPOINT)
        scheduler.sampler = self.sampler
        if loop:
            self.sampler.start()

    def now(self) -> float:
        import time

        return float(self._clock()) if self._clock is not None else time.time()

    def step(self) -> None:
        self._sched().step()

    def _store(self) -> Store:
        if self.store is None:
            raise StateError("the controller is not started")
        return self.store

    def _sched(self) -> Scheduler:
        if self.scheduler is None:
            raise StateError("the controller is not started")
        return self.scheduler

    # -- jobs -------------------------------------------------------------------------------
    def parse(self, request: SubmitRequest) -> Submission:
        """Parse without submitting (``--test-only``)."""
        return parse_request(request, self._parse_site())

    def submit(self, request: SubmitRequest, *, idempotency_key: str | None = None
               ) -> tuple[list[int], Submission]:
        """Parse, validate and commit; the new job ids (array tasks in index order).

        When the controller runs as root, jobs run as the user who submitted them: a user
        without an account on this host is refused here, before anything is stored."""
        check_account(request.user)
        sub, jobs = self._prepare(request, self._parse_site(), None)
        ids = self._store().submit(jobs, ts=self.now(), idempotency_key=idempotency_key)
        self._sched().wake()
        return ids, sub

    def submit_batch(self, requests: Sequence[SubmitRequest], *,
                     idempotency_key: str | None = None
                     ) -> list[tuple[list[int], Submission]]:
        """Several submissions in one transaction, all or nothing (as :meth:`submit` each);
        an error names the submission (``submissions[3]``) as well as file and line."""
        site, memo = self._parse_site(), BatchMemo()
        users: dict[str, int] = {}  # each user's first submission
        for i, request in enumerate(requests):
            users.setdefault(request.user, i)
        for user, i in users.items():
            try:
                check_account(user)
            except InputError as exc:
                raise exc.prefixed(f"submissions[{i}]") from None
        prepared = []
        for i, request in enumerate(requests):
            try:
                prepared.append(self._prepare(request, site, memo))
            except InputError as exc:
                raise exc.prefixed(f"submissions[{i}]") from None
        ids = self._store().submit_batch([jobs for _, jobs in prepared], ts=self.now(),
                                         idempotency_key=idempotency_key)
        self._sched().wake()
        return [(job_ids, sub) for job_ids, (sub, _) in zip(ids, prepared, strict=True)]

    def _prepare(self, request: SubmitRequest, site: Site, memo: BatchMemo | None
                 ) -> tuple[Submission, list[NewJob]]:
        sub = parse_request(request, site, memo)
        if sub.test_only:
            raise InputError("--test-only submits nothing: use it alone, not in a batch",
                             field="argv")
        return sub, new_jobs(sub, request, default_project=self.config.default_project,
                             default_time_limit_s=self.config.default_time_limit_s,
                             node_gpus=self.site.node_gpus, memo=memo)

    def _parse_site(self) -> Site:
        """The site as submissions are checked against it: its QOS are the core's defaults
        and the stored ones, read again after this process commits a tenancy change."""
        store = self._store()
        version, site = self._qos_site
        if version != store.tenancy_version:
            version = store.tenancy_version
            names = tuple(dict.fromkeys([*DEFAULT_QOS, *(q.name for q in store.list_qos())]))
            site = replace(self.site, qos=names)
            self._qos_site = (version, site)
        return site

    def get_job(self, job_id: int) -> JobRow:
        row = self._store().get_job(job_id)
        if row is None:
            raise NotFoundError(f"no job {job_id}", field="job_id")
        return row

    def list_jobs(self, **filters: Any) -> list[JobRow]:
        return self._store().list_jobs(**filters)

    def job_events(self, job_id: int) -> list[EventRow]:
        self.get_job(job_id)
        return self._store().events_for_job(job_id)

    def cancel(self, job_id: int, *, by: str) -> JobRow:
        """Cancel a pending job now, or signal a running one (it ends CANCELLED)."""
        row = self.get_job(job_id)
        if row.state is JobState.PENDING:
            self._store().append([NewEvent(EventKind.JOB_CANCELLED, self.now(), job_id=job_id,
                                           payload={"by": by})])
        elif row.state is JobState.RUNNING:
            self._sched().cancel_running(job_id)
        else:
            raise StateError(f"job {job_id} already ended ({row.state})")
        self._sched().wake()
        return self.get_job(job_id)

    def hold(self, job_id: int, *, by: str) -> JobRow:
        return self._set_held(job_id, EventKind.JOB_HELD, by)

    def release(self, job_id: int, *, by: str) -> JobRow:
        return self._set_held(job_id, EventKind.JOB_RELEASED, by)

    def _set_held(self, job_id: int, kind: EventKind, by: str) -> JobRow:
        self.get_job(job_id)
        self._store().append([NewEvent(kind, self.now(), job_id=job_id, payload={"by": by})])
        self._sched().wake()
        return self.get_job(job_id)

    def log_path(self, job_id: int, stream: str = "stdout") -> Path:
        if stream not in ("stdout", "stderr"):
            raise InputError(f"must be stdout or stderr, got {stream!r}", field="stream")
        row = self.get_job(job_id)
        node = row.allocation[0][0] if row.allocation else ""
        out, err = output_paths(row, node)
        return Path(out if stream == "stdout" else err)

    def live_view(self, job_id: int) -> dict[str, Any] | None:
        """The latest cycle's reason, ETA and priority factors of a pending job."""
        result = self._sched().last_result
        if result is None:
            return None
        factors = result.factors.get(str(job_id))
        for v in result.pending:  # the cycle's order: a linear scan, for one job
            if v.job_id == str(job_id):
                return {"reason": v.reason.value, "eta_ts": v.planned_start_s,
                        "detail": v.detail,
                        "priority": None if factors is None else factor_dict(factors)}
        return None

    # -- nodes ------------------------------------------------------------------------------
    def nodes(self) -> list[NodeView]:
        """Every node, as sinfo: a node in an open maintenance window is ``maint`` (unless
        drained or down), and every node says which reservation holds it now and when its
        next maintenance starts."""
        usage = self._sched().node_usage()
        # The tables are immutable, replaced whole: read without the loop's lock.
        marks = node_marks(self._sched().tenancy.tables.reservations, self.now())
        out = []
        for row in self._store().list_nodes():
            used = usage.get(row.name, 0)
            state = row.state.value
            mark = marks.get(row.name, NO_MARKS)
            if row.state is NodeState.IDLE:
                if mark.in_maintenance:
                    state = "maint"
                elif used:
                    state = (NodeState.ALLOCATED if used >= row.gpus else NodeState.MIXED).value
            out.append(NodeView(row.name, row.gpus, row.su, state, row.reason, used,
                                mark.reservation, mark.maint_start_ts))
        return out

    def drain(self, name: str, *, reason: str, by: str) -> NodeView:
        return self._node_event(name, EventKind.NODE_DRAINED, {"reason": reason, "by": by})

    def resume(self, name: str, *, by: str) -> NodeView:
        return self._node_event(name, EventKind.NODE_RESUMED, {"by": by})

    def _node_event(self, name: str, kind: EventKind, payload: dict[str, Any]) -> NodeView:
        if self._store().get_node(name) is None:
            raise NotFoundError(f"no node {name!r}", field="node")
        self._store().append([NewEvent(kind, self.now(), node=name, payload=payload)])
        self._sched().wake()
        return next(n for n in self.nodes() if n.name == name)

    # -- tenancy: fair share, grants, sensitive projects -------------------------------------
    def share(self) -> ShareView:
        """The fair-share table the scheduler uses (as sshare)."""
        return self._sched().with_tenancy(share_view)

    def grant_standings(self, project: str | None = None) -> list[GrantStanding]:
        """Grants, hours left and forecast of every project with grants or metered (or of
        ``project`` alone, whatever it has)."""
        if project is None:
            return self._sched().with_tenancy(grant_standings)
        return [self._sched().with_tenancy(lambda t, now: grant_standing(t, project, now))]

    def tenancy_changed(self) -> None:
        """A QOS, grant or reservation was committed: the scheduler takes it in soon
        rather than at its next periodic step."""
        if self.scheduler is not None:
            self.scheduler.wake()

    def is_sensitive(self, project: str) -> bool:
        """Is ``project`` flagged sensitive (its logs and outputs are its members' only)?"""
        return self._sched().tenancy.is_sensitive(project)  # immutable tables: no lock

    # -- the machine ------------------------------------------------------------------------
    def power_w(self) -> float | None:
        """The machine's power at the telemetry's last tick, watts (None: none yet)."""
        power = self.sampler.power_w() if self.sampler is not None else None
        return None if power is None else round(power, 1)

    def summary(self) -> dict[str, Any]:
        nodes = self.nodes()
        states = self._store().count_jobs_by_state()
        result = self._sched().last_result
        reasons = Counter(v.reason.value for v in result.pending) if result else Counter()
        return {
            "cluster": self.cluster.name, "emulated_gpus": self.emulated,
            "nodes": len(nodes), "nodes_by_state": dict(Counter(n.state for n in nodes)),
            "gpus": sum(n.gpus for n in nodes),
            "gpus_allocated": sum(n.gpus_allocated for n in nodes),
            "power_w": self.power_w(),
            "jobs_by_state": {str(k): v for k, v in sorted(states.items())},
            "queue_by_reason": dict(sorted(reasons.items())),
            "policy": self.policy.name, "cycles": self._sched().cycles,
            "pid": os.getpid(),
        }
