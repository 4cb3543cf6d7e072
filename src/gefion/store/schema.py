"""The store's tables (SQLAlchemy Core) and the conversions between rows and records.

The tables here are the *model*; the schema in a database is made by the Alembic revisions
in ``migrations/versions``, and a test checks that the two agree on SQLite and PostgreSQL.
A schema change is therefore two edits: this module and a new revision.

- ``events`` is the log, the source of truth. ``seq`` is allocated by the store under the
  log head lock (see ``log_head``), so it is gap-free and in commit order: a reader that
  tails ``seq > n`` never misses an event committed later with a smaller number.
- ``jobs`` and ``nodes`` are projections of the log (:mod:`gefion.store.projection`), plus
  the queue-view columns of ``jobs`` (``reason``, ``eta_ts``, ``priority``) that the
  scheduler writes and that are no events.
- ``log_head`` is one row: the last event ``seq`` and the last job id handed out. Every
  writing transaction locks it first, which serializes writers (also across processes on
  PostgreSQL) and makes ids monotonic and never reused, even when job rows are purged.

No foreign keys: a projection row is rebuilt from events, so events cannot depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gefion.core.jobs import JobState
from gefion.core.topology import NodeState
from gefion.store.records import Allocation, EventRow, JobRow, NodeRow

# SQLite needs exactly INTEGER for its rowid primary keys; PostgreSQL gets 64 bits.
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

events = sa.Table(
    "events", metadata,
    sa.Column("seq", BigInt, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.Double(), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("job_id", BigInt, nullable=True),
    sa.Column("node", sa.String(255), nullable=True),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Index("ix_events_job_id_seq", "job_id", "seq"),
)

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", BigInt, primary_key=True, autoincrement=False),
    sa.Column("array_job_id", BigInt, nullable=True),
    sa.Column("array_task_id", sa.Integer(), nullable=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("qos", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("spec", sa.JSON(), nullable=False),
    sa.Column("submit_ts", sa.Double(), nullable=False),
    sa.Column("start_ts", sa.Double(), nullable=True),
    sa.Column("end_ts", sa.Double(), nullable=True),
    sa.Column("exit_code", sa.Integer(), nullable=True),
    sa.Column("allocation", sa.JSON(), nullable=False),
    sa.Column("held", sa.Boolean(), nullable=False),
    sa.Column("restarts", sa.Integer(), nullable=False),
    sa.Column("reason", sa.String(255), nullable=True),
    sa.Column("eta_ts", sa.Double(), nullable=True),
    sa.Column("priority", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    sa.Column("updated_seq", BigInt, nullable=False),
    sa.Column("gpu_s", sa.Double(), nullable=False, server_default=sa.text("0")),
    sa.Column("energy_j", sa.Double(), nullable=True),
    sa.UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
    sa.Index("ix_jobs_state_id", "state", "id"),
    sa.Index("ix_jobs_user_id", "user", "id"),
    sa.Index("ix_jobs_project_id", "project", "id"),
    sa.Index("ix_jobs_array_job_id", "array_job_id"),
)

nodes = sa.Table(
    "nodes", metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("gpus", sa.Integer(), nullable=False),
    sa.Column("su", sa.String(255), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(255), nullable=True),
    sa.Column("updated_seq", BigInt, nullable=False),
)

log_head = sa.Table(
    "log_head", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("last_seq", BigInt, nullable=False),
    sa.Column("last_job_id", BigInt, nullable=False),
    sa.CheckConstraint("id = 1", name="ck_log_head_one_row"),
)

#: The columns of ``jobs`` that events may change after submission.
JOB_MUTABLE_COLUMNS = ("state", "start_ts", "end_ts", "exit_code", "allocation", "held",
                       "restarts", "reason", "eta_ts", "priority", "updated_seq", "gpu_s",
                       "energy_j")


# -- records ↔ rows ---------------------------------------------------------------------

def allocation_to_json(allocation: Allocation) -> dict[str, list[int]]:
    return {node: list(gpus) for node, gpus in allocation}


def allocation_from_json(obj: Mapping[str, Any]) -> Allocation:
    return tuple((str(node), tuple(int(g) for g in gpus)) for node, gpus in obj.items())


def job_from_db(row: sa.Row[Any], spec: Mapping[str, Any] | None = None) -> JobRow:
    """The job row ``row`` holds; ``spec``: its spec, for a row read without that column."""
    m = row._mapping
    return JobRow(
        id=m["id"], name=m["name"], user=m["user"], project=m["project"], qos=m["qos"],
        state=JobState(m["state"]), spec=m["spec"] if spec is None else spec,
        submit_ts=m["submit_ts"],
        array_job_id=m["array_job_id"], array_task_id=m["array_task_id"],
        start_ts=m["start_ts"], end_ts=m["end_ts"], exit_code=m["exit_code"],
        allocation=allocation_from_json(m["allocation"]), held=bool(m["held"]),
        restarts=m["restarts"], reason=m["reason"], eta_ts=m["eta_ts"],
        priority=m["priority"], idempotency_key=m["idempotency_key"],
        updated_seq=m["updated_seq"], gpu_s=m["gpu_s"], energy_j=m["energy_j"],
    )


def node_to_db(node: NodeRow) -> dict[str, Any]:
    return {"name": node.name, "gpus": node.gpus, "su": node.su, "state": node.state.value,
            "reason": node.reason, "updated_seq": node.updated_seq}


def node_from_db(row: sa.Row[Any]) -> NodeRow:
    m = row._mapping
    return NodeRow(name=m["name"], gpus=m["gpus"], su=m["su"], state=NodeState(m["state"]),
                   reason=m["reason"], updated_seq=m["updated_seq"])


def event_from_db(row: sa.Row[Any]) -> EventRow:
    m = row._mapping
    return EventRow(seq=m["seq"], ts=m["ts"], kind=m["kind"], job_id=m["job_id"],
                    node=m["node"], payload=m["payload"])
