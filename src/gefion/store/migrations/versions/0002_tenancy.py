"""Tenancy: users, projects, memberships, API tokens (hashed), QOS, grants, reservations.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01

Projections of the tenancy events (``user.created``, ``token.revoked``...), which share the
event log with jobs and nodes. Written out in full, as 0001: history does not follow the
model.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

NAME = 64


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(NAME), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("default_project", sa.String(NAME), nullable=True),
        sa.Column("created_ts", sa.Double(), nullable=False),
    )
    op.create_table(
        "projects",
        sa.Column("name", sa.String(NAME), primary_key=True),
        sa.Column("shares", sa.Double(), nullable=False),
        sa.Column("max_gpus", sa.Integer(), nullable=True),
        sa.Column("metered", sa.Boolean(), nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_ts", sa.Double(), nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column("project", sa.String(NAME), primary_key=True),
        sa.Column("user", sa.String(NAME), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("since_ts", sa.Double(), nullable=False),
    )
    op.create_index("ix_memberships_user", "memberships", ["user"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(NAME), primary_key=True),
        sa.Column("user", sa.String(NAME), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_ts", sa.Double(), nullable=False),
        sa.Column("expires_ts", sa.Double(), nullable=True),
        sa.Column("revoked_ts", sa.Double(), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("hash", name="uq_tokens_hash"),
    )
    op.create_index("ix_tokens_user", "tokens", ["user"])
    op.create_table(
        "qos",
        sa.Column("name", sa.String(NAME), primary_key=True),
        sa.Column("priority", sa.Double(), nullable=False),
        sa.Column("preemptible", sa.Boolean(), nullable=False),
        sa.Column("preempts", sa.JSON(), nullable=False),
        sa.Column("max_time_limit_s", sa.Integer(), nullable=True),
        sa.Column("max_gpus_per_user", sa.Integer(), nullable=True),
        sa.Column("grace_s", sa.Integer(), nullable=False),
        sa.Column("usage_factor", sa.Double(), nullable=False),
        sa.Column("requeue", sa.Boolean(), nullable=True),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.String(NAME), primary_key=True),
        sa.Column("project", sa.String(NAME), nullable=False),
        sa.Column("gpu_hours", sa.Double(), nullable=False),
        sa.Column("valid_from_ts", sa.Double(), nullable=False),
        sa.Column("valid_to_ts", sa.Double(), nullable=True),
        sa.Column("funder", sa.String(255), nullable=False),
    )
    op.create_index("ix_grants_project", "grants", ["project"])
    op.create_table(
        "reservations",
        sa.Column("name", sa.String(NAME), primary_key=True),
        sa.Column("nodes", sa.JSON(), nullable=False),
        sa.Column("start_ts", sa.Double(), nullable=False),
        sa.Column("end_ts", sa.Double(), nullable=False),
        sa.Column("period_s", sa.Double(), nullable=True),
        sa.Column("until_ts", sa.Double(), nullable=True),
        sa.Column("projects", sa.JSON(), nullable=False),
        sa.Column("users", sa.JSON(), nullable=False),
        sa.Column("maintenance", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    for table in ("reservations", "grants", "qos", "tokens", "memberships", "projects",
                  "users"):
        op.drop_table(table)
