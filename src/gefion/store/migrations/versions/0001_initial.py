"""The initial schema: the event log, the jobs and nodes projections, the log head.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out in full rather than from :mod:`gefion.store.schema`: a revision is history and
must not change when the model does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", BigInt, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("job_id", BigInt, nullable=True),
        sa.Column("node", sa.String(255), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    op.create_index("ix_events_job_id_seq", "events", ["job_id", "seq"])
    op.create_table(
        "jobs",
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
        sa.UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
    )
    op.create_index("ix_jobs_state_id", "jobs", ["state", "id"])
    op.create_index("ix_jobs_user_id", "jobs", ["user", "id"])
    op.create_index("ix_jobs_project_id", "jobs", ["project", "id"])
    op.create_index("ix_jobs_array_job_id", "jobs", ["array_job_id"])
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("su", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("updated_seq", BigInt, nullable=False),
    )
    log_head = op.create_table(
        "log_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_seq", BigInt, nullable=False),
        sa.Column("last_job_id", BigInt, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_log_head_one_row"),
    )
    op.bulk_insert(log_head, [{"id": 1, "last_seq": 0, "last_job_id": 0}])


def downgrade() -> None:
    for table in ("log_head", "nodes", "jobs", "events"):
        op.drop_table(table)
