"""The store's records: what callers hand in (:class:`NewJob`, :class:`NewEvent`) and what
they get back (:class:`JobRow`, :class:`NodeRow`, :class:`EventRow`).

All are frozen dataclasses, never ORM objects: a row read from the store is a value that a
caller may keep, compare and pass between threads. Mapping fields (``spec``, ``payload``,
``priority``) hold plain JSON values; treat them as read-only.

Units: every ``*_ts`` is wall-clock seconds since the epoch, as supplied by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gefion.core.jobs import Job, JobSpec, JobState
from gefion.core.topology import NodeState
from gefion.store.codec import spec_from_json, spec_to_json

#: A JSON object as stored (keys are strings, values JSON).
JsonObject = Mapping[str, Any]
#: Node name → GPU indices on that node, in placement order (as ``Job.allocation`` in the core).
Allocation = tuple[tuple[str, tuple[int, ...]], ...]


class EventKind(StrEnum):
    """Every kind of event the store accepts. A job event names ``job_id``; a node event ``node``.

    ``job.submitted`` is written only by :meth:`gefion.store.Store.submit`, which allocates
    the ids; the others through :meth:`gefion.store.Store.append`.
    """

    JOB_SUBMITTED = "job.submitted"    # payload: the job's row fields (see projection.py)
    JOB_STARTED = "job.started"        # payload: {"allocation": {node: [gpu, ...]}}
    JOB_FINISHED = "job.finished"      # payload: {"exit_code": int, "state"?: a final state}
    JOB_CANCELLED = "job.cancelled"    # payload: free-form (who, why)
    JOB_PREEMPTED = "job.preempted"    # payload: free-form (by whom, grace_s)
    # The end of a run (finished, cancelled, preempted, node_fail) may carry "energy_j", the
    # run's energy measured by the telemetry sampler (joules; docs/telemetry.md).
    JOB_REQUEUED = "job.requeued"      # PREEMPTED / NODE_FAIL → PENDING; restarts + 1
    JOB_HELD = "job.held"              # a pending job is held (not scheduled)
    JOB_RELEASED = "job.released"      # a held job is released
    JOB_NODE_FAIL = "job.node_fail"    # ``node`` names the node that failed under the job
    NODE_REGISTERED = "node.registered"  # payload: {"gpus": int, "su": str}
    NODE_DRAINED = "node.drained"      # payload: {"reason": str}
    NODE_RESUMED = "node.resumed"      # DRAINED / DOWN → up
    NODE_DOWN = "node.down"            # payload: {"reason": str}
    NODE_UP = "node.up"                # DOWN → up
    # Tenancy (gefion.store.tenancy): people, projects and what they may use. Every payload
    # carries ``by``, who made the change: the log is the audit trail.
    USER_CREATED = "user.created"      # payload: {"name", "role", "default_project"}
    USER_UPDATED = "user.updated"      # payload: {"name", "role"?, "default_project"?}
    PROJECT_CREATED = "project.created"  # payload: {"name", "shares", "max_gpus", ...}
    MEMBER_ADDED = "member.added"      # payload: {"project", "user", "role"}
    MEMBER_REMOVED = "member.removed"  # payload: {"project", "user"}
    TOKEN_CREATED = "token.created"    # payload: {"id", "user", "hash", "prefix", ...}
    TOKEN_REVOKED = "token.revoked"    # payload: {"id"}
    QOS_CREATED = "qos.created"        # payload: the QOS's fields
    GRANT_CREATED = "grant.created"    # payload: the grant's fields
    RESERVATION_CREATED = "reservation.created"  # payload: the reservation's fields
    RESERVATION_DELETED = "reservation.deleted"  # payload: {"name"}
    # Audit only (no projection): a refused request; coalesced, see gefion.api.denials.
    ACCESS_DENIED = "access.denied"    # payload: {"principal", "route", "target", ...}

    @property
    def is_job_event(self) -> bool:
        return self.value.startswith("job.")

    @property
    def domain(self) -> str:
        """What the event changes: ``job``, ``node``, ``tenancy`` (people, projects, tokens,
        QOS, grants, reservations) or ``audit`` (nothing: a record only)."""
        head = self.value.split(".", 1)[0]
        return head if head in ("job", "node") else "audit" if head == "access" \
            else "tenancy"


@dataclass(frozen=True, slots=True)
class NewJob:
    """One job to submit. ``spec`` is the JobSpec as JSON plus submission extras (script
    path, output/error patterns, workdir, env...); the store keeps it verbatim.

    ``array_task_id`` marks a task of a job array: a :meth:`~gefion.store.Store.submit` call
    whose jobs all carry one becomes an array sharing ``array_job_id`` (the first task's id).
    """

    name: str
    user: str
    project: str
    qos: str = "normal"
    spec: JsonObject = field(default_factory=dict)
    held: bool = False
    array_task_id: int | None = None
    #: ``spec`` as the core's JobSpec, when the submitter had it (:meth:`from_spec`): the
    #: job row the store makes keeps it, so this process's scheduler never decodes it again.
    decoded: JobSpec | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_spec(cls, spec: JobSpec, *, held: bool = False,
                  **extras: Any) -> NewJob:
        """A NewJob for a validated :class:`JobSpec`; ``extras`` join the stored spec."""
        return cls(name=spec.name, user=spec.user, project=spec.project, qos=spec.qos,
                   spec={**spec_to_json(spec), **extras}, held=held,
                   array_task_id=spec.array_index, decoded=spec)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: ``kind`` at ``ts`` (seconds), about ``job_id`` and/or ``node``."""

    kind: EventKind | str
    ts: float
    job_id: int | None = None
    node: str | None = None
    payload: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event of the log. ``seq`` is the global order: gap-free, in commit order.

    ``row``: for a ``job.submitted`` event this process wrote, the job row it projects to,
    as the writer made it (with its spec decoded); None for events read back from the
    database. Readers in this process take it instead of projecting the event again."""

    seq: int
    ts: float
    kind: str
    job_id: int | None
    node: str | None
    payload: JsonObject
    row: JobRow | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class JobRow:
    """The ``jobs`` projection of one job: what its events say, plus the queue view.

    ``reason``, ``eta_ts`` and ``priority`` are the scheduler's latest view of a pending job
    (:meth:`~gefion.store.Store.set_scheduling_info`), not events: a rebuild from the log
    leaves them empty until the next cycle fills them in. ``updated_seq`` is the ``seq`` of
    the last event that touched the job.

    Accounting of the runs that ended (a requeued job has had several): ``gpu_s``, the GPUs
    held × seconds held (raw, before any QOS usage factor), and ``energy_j``, the energy the
    telemetry sampler measured, joules (None: no run of the job was measured).
    """

    id: int
    name: str
    user: str
    project: str
    qos: str
    state: JobState
    spec: JsonObject
    submit_ts: float
    array_job_id: int | None = None
    array_task_id: int | None = None
    start_ts: float | None = None
    end_ts: float | None = None
    exit_code: int | None = None
    allocation: Allocation = ()
    held: bool = False
    restarts: int = 0
    reason: str | None = None
    eta_ts: float | None = None
    priority: JsonObject | None = None
    idempotency_key: str | None = None
    updated_seq: int = 0
    gpu_s: float = 0.0
    energy_j: float | None = None
    #: ``spec`` decoded, when the row was made from a submission in this process (events
    #: never change a job's spec, so the rows that follow from this one keep it).
    decoded: JobSpec | None = field(default=None, compare=False, repr=False)

    def to_job(self) -> Job:
        """The core's record of this job, for a scheduling snapshot. Its spec is ``decoded``
        or read back from ``spec`` (:func:`~gefion.store.codec.spec_from_json`);
        ``service_gpu_s`` is left 0: attained service is accounting, derived from the
        events."""
        spec = self.decoded if self.decoded is not None else spec_from_json(self.spec)
        return Job(id=str(self.id), spec=spec, submit_s=self.submit_ts,
                   state=self.state, start_s=self.start_ts, end_s=self.end_ts,
                   allocation=self.allocation, held=self.held, exit_code=self.exit_code,
                   restarts=self.restarts)


@dataclass(frozen=True, slots=True)
class NodeRow:
    """The ``nodes`` projection of one node. ``state`` is the administrative state: ``IDLE``
    (up), ``DRAINED`` or ``DOWN``; ``MIXED``/``ALLOCATED`` follow from running jobs
    (:func:`gefion.core.topology.node_state_for`) and are not stored."""

    name: str
    gpus: int
    su: str
    state: NodeState = NodeState.IDLE
    reason: str | None = None
    updated_seq: int = 0
