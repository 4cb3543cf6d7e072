"""What the API answers about jobs, events and nodes: plain JSON built from store rows.

A job's ``env`` (the submitter's environment, which may hold tokens and passwords) is left
out of every answer, including the ``job.submitted`` event that carries the whole spec. Job
lists also leave out the script text (it can be large); ``GET /v1/jobs/{id}`` has it.

Units: ``*_ts`` seconds since the epoch, ``*_s`` seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from gefion.controller.service import NodeView
from gefion.controller.telemetry import JobTelemetry
from gefion.core.jobs import JobState
from gefion.store import EventRow, JobRow
from gefion.store.hotpath import orjson_dumps

#: Spec keys never sent back: the environment may hold secrets.
SECRET_SPEC_KEYS = frozenset({"env"})
#: Events whose payload may carry a job's ``exit_code`` and ``signal``.
_END_EVENTS = ("job.finished", "job.cancelled", "job.preempted")


def json_response(body: Any, status: int = 200) -> Response:
    """A compact JSON answer, serialized once (no per-field encoders: lists of 10,000 jobs)
    by orjson, about ten times faster than the standard encoder; what orjson would write
    otherwise (NaN and infinities as null) or refuses (keys that are not text, integers
    beyond 64 bits) the standard encoder writes as it always did."""
    data = orjson_dumps(body)
    if data is None:
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(data, status_code=status, media_type="application/json")


def public_spec(spec: Mapping[str, Any], *, script: bool = True) -> dict[str, Any]:
    """The stored spec without secrets (and without the script text unless ``script``)."""
    return {k: v for k, v in spec.items()
            if k not in SECRET_SPEC_KEYS and (script or k != "script")}


def exit_signal(events: list[EventRow]) -> int | None:
    """The signal that ended the job's last run, from its last end event (None: none)."""
    for event in reversed(events):
        if event.kind in _END_EVENTS and "signal" in event.payload:
            signal = event.payload.get("signal")
            return int(signal) if isinstance(signal, int) else None
    return None


def job_json(row: JobRow, *, now: float, live: Mapping[str, Any] | None = None,
             detail: bool = False, signal: int | None = None,
             telemetry: JobTelemetry | None = None) -> dict[str, Any]:
    """One job. ``live`` (the latest cycle's reason, ETA and priority factors) wins over
    the stored queue view; ``detail`` adds the script to the spec. ``telemetry``: the
    sampler's view of a running job (power, energy so far, idle GPUs)."""
    spec = row.spec
    end = row.end_ts if row.end_ts is not None else (now if row.start_ts is not None else None)
    reason, eta_ts, priority, why = row.reason, row.eta_ts, row.priority, None
    if live is not None:
        reason, eta_ts, why = live.get("reason"), live.get("eta_ts"), live.get("detail") or None
        priority = live.get("priority") or priority
    return {
        "id": row.id, "name": row.name, "user": row.user, "project": row.project,
        "qos": row.qos, "state": row.state.value, "reason": reason, "reason_detail": why,
        "eta_ts": eta_ts, "priority": None if priority is None else dict(priority),
        "held": row.held, "restarts": row.restarts,
        "submit_ts": row.submit_ts, "start_ts": row.start_ts, "end_ts": row.end_ts,
        "elapsed_s": None if row.start_ts is None or end is None else max(0.0,
                                                                          end - row.start_ts),
        "time_limit_s": spec.get("time_limit_s"), "gpus": spec.get("gpus"),
        "nodes": len(row.allocation) if row.allocation else spec.get("nodes"),
        "nodelist": [node for node, _ in row.allocation],
        "allocation": {node: list(gpus) for node, gpus in row.allocation},
        "exit_code": row.exit_code, "signal": signal,
        "array_job_id": row.array_job_id, "array_task_id": row.array_task_id,
        **usage_json(row, now, telemetry),
        "spec": public_spec(spec, script=detail),
    }


def usage_json(row: JobRow, now: float, telemetry: JobTelemetry | None) -> dict[str, Any]:
    """GPU-seconds (raw) and energy of every run of the job, the running one up to now;
    and, while it runs, its power and whether its GPUs are idle (docs/telemetry.md)."""
    gpu_s, energy_j = row.gpu_s, row.energy_j
    if row.state is JobState.RUNNING and row.start_ts is not None:
        gpu_s += sum(len(g) for _, g in row.allocation) * max(0.0, now - row.start_ts)
        if telemetry is not None:
            energy_j = (energy_j or 0.0) + telemetry.energy_j
    return {"gpu_s": gpu_s,
            "energy_j": None if energy_j is None else round(energy_j, 3),
            "power_w": None if telemetry is None or telemetry.power_w is None
            else round(telemetry.power_w, 1),
            "idle_gpus": telemetry is not None and telemetry.idle,
            "idle_since_ts": None if telemetry is None else telemetry.idle_since_ts}


def event_json(event: EventRow) -> dict[str, Any]:
    payload = dict(event.payload)
    spec = payload.get("spec")
    if isinstance(spec, Mapping):
        payload["spec"] = public_spec(spec)
    return {"seq": event.seq, "ts": event.ts, "kind": event.kind, "job_id": event.job_id,
            "node": event.node, "payload": payload}


def node_json(node: NodeView) -> dict[str, Any]:
    return {"name": node.name, "gpus": node.gpus, "su": node.su, "state": node.state,
            "reason": node.reason, "gpus_allocated": node.gpus_allocated,
            "reservation": node.reservation, "maint_start_ts": node.maint_start_ts}
