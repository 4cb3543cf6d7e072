"""Accounting of ended runs on the jobs projection: GPU-seconds and measured energy.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01

``jobs.gpu_s`` (GPUs × seconds of every ended run, raw) and ``jobs.energy_j`` (joules the
telemetry sampler measured; None where no run was measured). Both are projections of the
log, so the upgrade fills ``gpu_s`` of the jobs already in the database from their
``job.started`` events and the events that ended those runs (the same rule as
:mod:`gefion.store.projection`); no run before this revision was measured, so ``energy_j``
stays None. Written out in full, as 0001: history does not follow the model.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_RUN_ENDS = ("job.finished", "job.cancelled", "job.preempted", "job.node_fail")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("gpu_s", sa.Double(), nullable=False,
                                    server_default=sa.text("0")))
    op.add_column("jobs", sa.Column("energy_j", sa.Double(), nullable=True))
    if op.get_context().as_sql:
        return  # offline (SQL for a DBA): no data to read; a rebuild fills it in
    _fill_gpu_s(op.get_bind())


def _fill_gpu_s(conn: sa.Connection) -> None:
    """GPU-seconds of every ended run, from the log: a run starts with ``job.started``
    (its allocation) and ends with the next end event of the job."""
    events = sa.table("events", sa.column("seq"), sa.column("ts"), sa.column("kind"),
                      sa.column("job_id"), sa.column("payload"))
    query = (sa.select(events.c.ts, events.c.kind, events.c.job_id, events.c.payload)
             .where(events.c.kind.in_(("job.started", *_RUN_ENDS)))
             .order_by(events.c.seq))
    running: dict[int, tuple[float, int]] = {}  # job → (start, GPUs)
    totals: dict[int, float] = {}
    for ts, kind, job_id, payload in conn.execute(query):
        if kind == "job.started":
            allocation: Any = json.loads(payload) if isinstance(payload, str) else payload
            gpus = sum(len(idx) for idx in (allocation.get("allocation") or {}).values())
            running[job_id] = (ts, gpus)
        elif job_id in running:
            start, gpus = running.pop(job_id)
            totals[job_id] = totals.get(job_id, 0.0) + gpus * max(0.0, ts - start)
    jobs = sa.table("jobs", sa.column("id"), sa.column("gpu_s"))
    rows = [{"b_id": job_id, "b_gpu_s": gpu_s} for job_id, gpu_s in totals.items()]
    if rows:
        conn.execute(sa.update(jobs).where(jobs.c.id == sa.bindparam("b_id"))
                     .values(gpu_s=sa.bindparam("b_gpu_s")), rows)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("energy_j")
        batch.drop_column("gpu_s")
