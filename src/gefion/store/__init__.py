"""The live controller's event store (SQLite or PostgreSQL, through SQLAlchemy 2).

::

    store = Store.open("sqlite:///var/gefion/gefion.db")   # or postgresql://...
    ids = store.submit([NewJob("train", "ana", "nlp", spec={...})], ts=now,
                       idempotency_key=request_id)
    store.append([NewEvent(EventKind.JOB_STARTED, now, job_id=ids[0],
                           payload={"allocation": {"dgx001": [0, 1]}})])
    store.active_jobs()   # what the scheduling cycle loads

Modules: :mod:`~gefion.store.records` (the dataclasses), :mod:`~gefion.store.projection`
(the pure ``apply``), :mod:`~gefion.store.schema` (tables), ``migrations/`` (Alembic),
:mod:`~gefion.store.engine` (backends, durability), :mod:`~gefion.store.writer` (group
commit), :mod:`~gefion.store.submit_ops` (submissions, the hot write),
:mod:`~gefion.store.ops` (the other writes), :mod:`~gefion.store.hotpath` (their
statements), :mod:`~gefion.store.checks` (input checks), :mod:`~gefion.store.codec`
(JobSpec ↔ JSON), :mod:`~gefion.store.store` (the API), :mod:`~gefion.store.usage` (runs
and usage totals, for accounting). Tenancy — users, projects,
memberships, API tokens, QOS, grants, reservations — is a projection of its own events:
:mod:`~gefion.store.tenancy` (records, the pure ``apply_tenancy``),
:mod:`~gefion.store.tenancy_schema` (tables), :mod:`~gefion.store.tenancy_ops` (the writes),
:mod:`~gefion.store.tenancy_store` (the calls), :mod:`~gefion.store.tokens` (tokens, hashed).
"""

from gefion.store.codec import spec_from_json, spec_to_json
from gefion.store.errors import NotFoundError, SchemaError
from gefion.store.projection import apply, apply_node, replay
from gefion.store.records import EventKind, EventRow, JobRow, NewEvent, NewJob, NodeRow
from gefion.store.store import SchedulingInfo, Store
from gefion.store.tenancy import MemberRow, ProjectRow, TokenRow, UserRow

__all__ = [
    "EventKind",
    "EventRow",
    "JobRow",
    "MemberRow",
    "NewEvent",
    "NewJob",
    "NodeRow",
    "NotFoundError",
    "ProjectRow",
    "SchedulingInfo",
    "SchemaError",
    "Store",
    "TokenRow",
    "UserRow",
    "apply",
    "apply_node",
    "replay",
    "spec_from_json",
    "spec_to_json",
]
