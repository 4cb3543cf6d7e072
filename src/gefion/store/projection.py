"""The projections as pure functions of the log: ``apply(event, job) -> job``.

The live store and :meth:`~gefion.store.Store.replay` call the same two functions, so a
projection rebuilt from the events equals the live one by construction. They read no clock
and touch no database; the state machine is the core's (:func:`gefion.core.jobs.check_transition`).

Job events (``job.*``) change one job; node events (``node.*``) change one node. A job's
``allocation`` is the placement of its latest run: set on start, kept when the run ends
(accounting and ``sacct`` read it), cleared on requeue. Leaving PENDING clears the queue
view (``reason``, ``eta_ts``): it described a wait that is over.

The end of a run (``job.finished``, ``job.cancelled``, ``job.preempted``, ``job.node_fail``
of a RUNNING job) adds the run's GPU-seconds to ``gpu_s`` (GPUs of its allocation × seconds
from its start to the event) and the ``energy_j`` its payload carries, if any, to
``energy_j``: accounting is derived from the log, so a rebuild gives the same totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from gefion.core.errors import InputError, StateError
from gefion.core.jobs import JobSpec, JobState, check_transition
from gefion.core.topology import NodeState
from gefion.store.errors import NotFoundError
from gefion.store.records import Allocation, EventKind, EventRow, JobRow, NodeRow

_FINAL_BY_EXIT = (JobState.COMPLETED, JobState.FAILED, JobState.TIMEOUT)
_UP = NodeState.IDLE
_KINDS = {k.value: k for k in EventKind}  # a member is equal to its value, and hashes alike


def event_kind(kind: str) -> EventKind:
    """``kind`` as an :class:`EventKind`; :class:`InputError` if there is no such kind."""
    try:  # a dict lookup: every event of every tailer passes here
        found = _KINDS.get(kind)
    except TypeError:  # unhashable: not a kind
        found = None
    if found is None:
        raise InputError(f"unknown event kind {kind!r}", field="kind")
    return found


def apply(event: EventRow, job: JobRow | None) -> JobRow:
    """The job after ``event``. ``job`` is None only for ``job.submitted``.

    Raises :class:`StateError` for an illegal transition, :class:`NotFoundError` for an
    event about a job that does not exist, :class:`InputError` for a malformed event.
    """
    kind = event_kind(event.kind)
    if not kind.is_job_event:
        raise InputError(f"{kind} is not a job event", field="kind")
    if event.job_id is None:
        raise InputError(f"{kind} needs a job id", field="job_id")
    if kind is EventKind.JOB_SUBMITTED:
        if job is not None:
            raise StateError(f"job {event.job_id} already exists")
        return _submitted(event)
    if job is None:
        raise NotFoundError(f"no job {event.job_id}", field="job_id")
    p = event.payload
    seq = event.seq
    match kind:
        case EventKind.JOB_STARTED:
            check_transition(job.state, JobState.RUNNING)
            if job.held:
                raise StateError(f"job {job.id} is held; release it before starting it")
            return replace(job, state=JobState.RUNNING, start_ts=event.ts, end_ts=None,
                           exit_code=None, allocation=_allocation(p), reason=None,
                           eta_ts=None, updated_seq=seq)
        case EventKind.JOB_FINISHED:
            exit_code = _optional_int(p, "exit_code")
            state = _final_state(p, exit_code)
            check_transition(job.state, state)
            return replace(_run_ended(job, event), state=state, end_ts=event.ts,
                           exit_code=exit_code, updated_seq=seq)
        case EventKind.JOB_CANCELLED:
            check_transition(job.state, JobState.CANCELLED)
            return replace(_run_ended(job, event), state=JobState.CANCELLED, end_ts=event.ts,
                           reason=None, eta_ts=None, updated_seq=seq)
        case EventKind.JOB_PREEMPTED:
            check_transition(job.state, JobState.PREEMPTED)
            return replace(_run_ended(job, event), state=JobState.PREEMPTED, end_ts=event.ts,
                           updated_seq=seq)
        case EventKind.JOB_NODE_FAIL:
            check_transition(job.state, JobState.NODE_FAIL)
            return replace(_run_ended(job, event), state=JobState.NODE_FAIL, end_ts=event.ts,
                           updated_seq=seq)
        case EventKind.JOB_REQUEUED:
            check_transition(job.state, JobState.PENDING)
            return replace(job, state=JobState.PENDING, start_ts=None, end_ts=None,
                           exit_code=None, allocation=(), restarts=job.restarts + 1,
                           updated_seq=seq)
        case EventKind.JOB_HELD:
            if job.state is not JobState.PENDING:
                raise StateError(f"job {job.id} is {job.state}; only a pending job is held")
            if job.held:
                raise StateError(f"job {job.id} is held already")
            return replace(job, held=True, updated_seq=seq)
        case EventKind.JOB_RELEASED:
            if not job.held:
                raise StateError(f"job {job.id} is not held")
            return replace(job, held=False, updated_seq=seq)
    raise InputError(f"{kind} is not handled by the jobs projection", field="kind")


def apply_node(event: EventRow, node: NodeRow | None) -> NodeRow:
    """The node after ``event``. ``node`` is None only for ``node.registered``.

    Raises as :func:`apply` does.
    """
    kind = event_kind(event.kind)
    if kind.is_job_event:
        raise InputError(f"{kind} is not a node event", field="kind")
    if not event.node:
        raise InputError(f"{kind} needs a node name", field="node")
    p = event.payload
    seq = event.seq
    if kind is EventKind.NODE_REGISTERED:
        gpus = _optional_int(p, "gpus")
        su = p.get("su")
        if gpus is None or gpus < 0:
            raise InputError("needs a whole number of GPUs >= 0", field="payload.gpus")
        if not isinstance(su, str) or not su:
            raise InputError("needs the node's scalable unit", field="payload.su")
        if node is None:  # a new node comes up; a re-registered one keeps its state
            return NodeRow(event.node, gpus, su, _UP, None, seq)
        return replace(node, gpus=gpus, su=su, updated_seq=seq)
    if node is None:
        raise NotFoundError(f"no node {event.node!r}", field="node")
    reason = _optional_str(p, "reason")
    match kind:
        case EventKind.NODE_DRAINED:
            if node.state is not _UP:
                raise StateError(f"node {node.name} is {node.state}; only an up node drains")
            return replace(node, state=NodeState.DRAINED, reason=reason, updated_seq=seq)
        case EventKind.NODE_DOWN:
            if node.state is NodeState.DOWN:
                raise StateError(f"node {node.name} is already down")
            return replace(node, state=NodeState.DOWN, reason=reason, updated_seq=seq)
        case EventKind.NODE_RESUMED:
            if node.state not in (NodeState.DRAINED, NodeState.DOWN):
                raise StateError(f"node {node.name} is {node.state}; only a drained or down "
                                 "node resumes")
            return replace(node, state=_UP, reason=None, updated_seq=seq)
        case EventKind.NODE_UP:
            if node.state is not NodeState.DOWN:
                raise StateError(f"node {node.name} is {node.state}, not down")
            return replace(node, state=_UP, reason=None, updated_seq=seq)
    raise InputError(f"{kind} is not handled by the nodes projection", field="kind")


def replay(events: Iterable[EventRow]) -> tuple[dict[int, JobRow], dict[str, NodeRow]]:
    """The projections the events (in ``seq`` order) say: jobs by id, nodes by name.
    Tenancy and audit events are skipped (:func:`gefion.store.tenancy.replay_tenancy`)."""
    job_rows: dict[int, JobRow] = {}
    node_rows: dict[str, NodeRow] = {}
    for event in events:
        kind = event_kind(event.kind)
        if kind.domain not in ("job", "node"):
            continue
        if kind.is_job_event:
            job = apply(event, None if event.job_id is None else job_rows.get(event.job_id))
            job_rows[job.id] = job
        else:
            node = apply_node(event, None if event.node is None else node_rows.get(event.node))
            node_rows[node.name] = node
    return job_rows, node_rows


# -- job.submitted ----------------------------------------------------------------------

def submitted_payload(*, name: str, user: str, project: str, qos: str, spec: Mapping[str, Any],
                      held: bool, array_job_id: int | None, array_task_id: int | None,
                      idempotency_key: str | None = None,
                      batch_size: int | None = None) -> dict[str, Any]:
    """The payload of ``job.submitted``: everything the jobs row is built from.

    The first job of a submission with an idempotency key carries the key and the number
    of jobs submitted together (ids are contiguous), so a retry can answer the same ids.
    """
    payload: dict[str, Any] = {
        "name": name, "user": user, "project": project, "qos": qos, "spec": dict(spec),
        "held": held, "array_job_id": array_job_id, "array_task_id": array_task_id,
    }
    if idempotency_key is not None:
        payload["idempotency_key"] = idempotency_key
        payload["batch_size"] = batch_size
    return payload


def _submitted(event: EventRow) -> JobRow:
    assert event.job_id is not None
    return submitted_row(event.job_id, event.seq, event.ts, event.payload)


def submitted_row(job_id: int, seq: int, ts: float, p: Mapping[str, Any],
                  decoded: JobSpec | None = None) -> JobRow:
    """The job row of ``job.submitted`` event ``seq`` (payload ``p``) about ``job_id``;
    ``decoded``: its spec as a JobSpec, when the writer has it (``JobRow.decoded``)."""
    try:
        return JobRow(
            id=job_id, name=str(p["name"]), user=str(p["user"]),
            project=str(p["project"]), qos=str(p["qos"]), state=JobState.PENDING,
            spec=p["spec"], submit_ts=ts, array_job_id=p.get("array_job_id"),
            array_task_id=p.get("array_task_id"), held=bool(p.get("held", False)),
            idempotency_key=p.get("idempotency_key"), updated_seq=seq, decoded=decoded,
        )
    except KeyError as e:
        raise InputError("job.submitted lacks a field", field=f"payload.{e.args[0]}") from None


# -- accounting -------------------------------------------------------------------------

def run_gpus(allocation: Allocation) -> int:
    """GPUs of an allocation, over all its nodes."""
    return sum(len(gpus) for _, gpus in allocation)


def _run_ended(job: JobRow, event: EventRow) -> JobRow:
    """``job`` with the run that ``event`` ends added to its accounting (unchanged if the
    job was not running: a pending job cancelled, a preempted one cancelled)."""
    energy = _optional_energy(event.payload)
    if job.state is not JobState.RUNNING or job.start_ts is None:
        return job
    gpu_s = run_gpus(job.allocation) * max(0.0, event.ts - job.start_ts)
    if energy is None:
        return replace(job, gpu_s=job.gpu_s + gpu_s)
    return replace(job, gpu_s=job.gpu_s + gpu_s, energy_j=(job.energy_j or 0.0) + energy)


def _optional_energy(p: Mapping[str, Any]) -> float | None:
    value = p.get("energy_j")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not 0 <= value < float("inf"):
        raise InputError(f"must be a number of joules >= 0, got {value!r}",
                         field="payload.energy_j")
    return float(value)


# -- payload fields ---------------------------------------------------------------------

def _allocation(p: Mapping[str, Any]) -> Allocation:
    raw = p.get("allocation", {})
    if not isinstance(raw, Mapping):
        raise InputError("must map node names to GPU index lists", field="payload.allocation")
    try:
        return tuple((str(node), tuple(int(g) for g in gpus)) for node, gpus in raw.items())
    except (TypeError, ValueError):
        raise InputError("must map node names to GPU index lists",
                         field="payload.allocation") from None


def _final_state(p: Mapping[str, Any], exit_code: int | None) -> JobState:
    raw = p.get("state")
    if raw is None:
        return JobState.COMPLETED if exit_code == 0 else JobState.FAILED
    try:
        state = JobState(raw)
    except ValueError:
        state = None
    if state not in _FINAL_BY_EXIT:
        raise InputError(f"must be one of {', '.join(_FINAL_BY_EXIT)}, got {raw!r}",
                         field="payload.state")
    assert state is not None
    return state


def _optional_int(p: Mapping[str, Any], key: str) -> int | None:
    value = p.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"must be a whole number, got {value!r}", field=f"payload.{key}")
    return value


def _optional_str(p: Mapping[str, Any], key: str) -> str | None:
    value = p.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"must be text, got {value!r}", field=f"payload.{key}")
    return value
