"""Checks of a caller's input, made in the caller's thread before anything is queued for
the writer: a bad request fails fast, names its field, and never reaches a transaction.

Limits match the columns (PostgreSQL enforces ``VARCHAR(n)``, SQLite would not), and JSON
must be storable on both backends (PostgreSQL's json refuses NaN and infinities), so both
backends accept and refuse the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gefion.core.errors import InputError
from gefion.store import projection
from gefion.store.hotpath import dumps
from gefion.store.records import NewEvent, NewJob

_TEXT_LIMITS = {"name": 255, "user": 255, "project": 255, "qos": 64, "node": 255,
                "reason": 255, "idempotency_key": 255}


def check_ts(ts: object, field: str = "ts") -> None:
    if not isinstance(ts, int | float) or isinstance(ts, bool) or not math.isfinite(ts):
        raise InputError(f"must be a finite number of seconds, got {ts!r}", field=field)


def check_text(value: object, field: str, *, required: bool = False) -> None:
    if not isinstance(value, str) or (required and not value):
        raise InputError(f"must be {'non-empty ' if required else ''}text, got {value!r}",
                         field=field)
    if len(value) > _TEXT_LIMITS[field]:
        raise InputError(f"must be at most {_TEXT_LIMITS[field]} characters", field=field)


def check_json(value: object, field: str) -> str | None:
    """JSON that both backends store alike (PostgreSQL refuses NaN and infinities); returns
    the text to store (None for None)."""
    try:
        return dumps(value)
    except (TypeError, ValueError) as e:
        raise InputError(f"is not storable as JSON: {e}", field=field) from None


def check_new_job(job: object, index: int) -> str:
    """Check a job to submit; returns its spec as the JSON text to store."""
    if not isinstance(job, NewJob):
        raise InputError(f"expected a NewJob, got {type(job).__name__}", field=f"jobs[{index}]")
    try:
        check_text(job.name, "name")
        check_text(job.user, "user")
        check_text(job.project, "project", required=True)
        check_text(job.qos, "qos", required=True)
        if not isinstance(job.held, bool):
            raise InputError(f"must be true or false, got {job.held!r}", field="held")
        if job.array_task_id is not None and (
                not isinstance(job.array_task_id, int) or job.array_task_id < 0):
            raise InputError(f"must be a whole number >= 0, got {job.array_task_id!r}",
                             field="array_task_id")
        if not isinstance(job.spec, Mapping):
            raise InputError("must be a JSON object", field="spec")
        spec_json = check_json(job.spec, "spec")
    except InputError as e:
        raise e.prefixed(f"jobs[{index}]") from None
    assert spec_json is not None
    return spec_json


def check_new_event(event: object, index: int) -> None:
    if not isinstance(event, NewEvent):
        raise InputError(f"expected a NewEvent, got {type(event).__name__}",
                         field=f"events[{index}]")
    try:
        projection.event_kind(event.kind)
        check_ts(event.ts)
        if event.job_id is not None and (not isinstance(event.job_id, int)
                                         or isinstance(event.job_id, bool)):
            raise InputError(f"must be a whole number, got {event.job_id!r}", field="job_id")
        if event.node is not None:
            check_text(event.node, "node", required=True)
        if not isinstance(event.payload, Mapping):
            raise InputError("must be a JSON object", field="payload")
        check_json(event.payload, "payload")
    except InputError as e:
        raise e.prefixed(f"events[{index}]") from None
