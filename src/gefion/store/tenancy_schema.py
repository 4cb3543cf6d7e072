"""The tenancy tables (SQLAlchemy Core, in :data:`gefion.store.schema.metadata`) and the
conversions between their rows and the records of :mod:`gefion.store.tenancy`.

They are projections of the tenancy events (made by revision 0002), rebuilt from the log
like ``jobs`` and ``nodes``. ``tokens.hash`` is unique and indexed: a request's token is
found by one equality lookup on its SHA-256 (the token itself is stored nowhere).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gefion.core.reservations import Reservation
from gefion.core.tenancy import QOS, Grant
from gefion.store.schema import metadata
from gefion.store.tenancy import Key, MemberRow, ProjectRow, Row, Table, TokenRow, UserRow

NAME_LEN = 64

users = sa.Table(
    "users", metadata,
    sa.Column("name", sa.String(NAME_LEN), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("default_project", sa.String(NAME_LEN), nullable=True),
    sa.Column("created_ts", sa.Double(), nullable=False),
)

projects = sa.Table(
    "projects", metadata,
    sa.Column("name", sa.String(NAME_LEN), primary_key=True),
    sa.Column("shares", sa.Double(), nullable=False),
    sa.Column("max_gpus", sa.Integer(), nullable=True),
    sa.Column("metered", sa.Boolean(), nullable=False),
    sa.Column("sensitive", sa.Boolean(), nullable=False),
    sa.Column("description", sa.String(255), nullable=False),
    sa.Column("created_ts", sa.Double(), nullable=False),
)

memberships = sa.Table(
    "memberships", metadata,
    sa.Column("project", sa.String(NAME_LEN), primary_key=True),
    sa.Column("user", sa.String(NAME_LEN), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("since_ts", sa.Double(), nullable=False),
    sa.Index("ix_memberships_user", "user"),
)

tokens = sa.Table(
    "tokens", metadata,
    sa.Column("id", sa.String(NAME_LEN), primary_key=True),
    sa.Column("user", sa.String(NAME_LEN), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("created_ts", sa.Double(), nullable=False),
    sa.Column("expires_ts", sa.Double(), nullable=True),
    sa.Column("revoked_ts", sa.Double(), nullable=True),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.UniqueConstraint("hash", name="uq_tokens_hash"),
    sa.Index("ix_tokens_user", "user"),
)

qos = sa.Table(
    "qos", metadata,
    sa.Column("name", sa.String(NAME_LEN), primary_key=True),
    sa.Column("priority", sa.Double(), nullable=False),
    sa.Column("preemptible", sa.Boolean(), nullable=False),
    sa.Column("preempts", sa.JSON(), nullable=False),
    sa.Column("max_time_limit_s", sa.Integer(), nullable=True),
    sa.Column("max_gpus_per_user", sa.Integer(), nullable=True),
    sa.Column("grace_s", sa.Integer(), nullable=False),
    sa.Column("usage_factor", sa.Double(), nullable=False),
    sa.Column("requeue", sa.Boolean(), nullable=True),
)

grants = sa.Table(
    "grants", metadata,
    sa.Column("id", sa.String(NAME_LEN), primary_key=True),
    sa.Column("project", sa.String(NAME_LEN), nullable=False),
    sa.Column("gpu_hours", sa.Double(), nullable=False),
    sa.Column("valid_from_ts", sa.Double(), nullable=False),
    sa.Column("valid_to_ts", sa.Double(), nullable=True),
    sa.Column("funder", sa.String(255), nullable=False),
    sa.Index("ix_grants_project", "project"),
)

reservations = sa.Table(
    "reservations", metadata,
    sa.Column("name", sa.String(NAME_LEN), primary_key=True),
    sa.Column("nodes", sa.JSON(), nullable=False),
    sa.Column("start_ts", sa.Double(), nullable=False),
    sa.Column("end_ts", sa.Double(), nullable=False),
    sa.Column("period_s", sa.Double(), nullable=True),
    sa.Column("until_ts", sa.Double(), nullable=True),
    sa.Column("projects", sa.JSON(), nullable=False),
    sa.Column("users", sa.JSON(), nullable=False),
    sa.Column("maintenance", sa.Boolean(), nullable=False),
)

TABLES: dict[Table, sa.Table] = {
    Table.USERS: users, Table.PROJECTS: projects, Table.MEMBERS: memberships,
    Table.TOKENS: tokens, Table.QOS: qos, Table.GRANTS: grants,
    Table.RESERVATIONS: reservations,
}


def key_clause(table: Table, key: Key) -> sa.ColumnElement[bool]:
    """The WHERE clause selecting the row of ``key``."""
    if table is Table.MEMBERS:
        assert isinstance(key, tuple)
        return sa.and_(memberships.c.project == key[0], memberships.c.user == key[1])
    t = TABLES[table]
    column: sa.Column[Any] = next(iter(t.primary_key.columns))
    return column == key


def row_to_db(row: Row) -> dict[str, Any]:
    match row:
        case UserRow():
            return {"name": row.name, "role": row.role, "default_project": row.default_project,
                    "created_ts": row.created_ts}
        case ProjectRow():
            return {"name": row.name, "shares": row.shares, "max_gpus": row.max_gpus,
                    "metered": row.metered, "sensitive": row.sensitive,
                    "description": row.description, "created_ts": row.created_ts}
        case MemberRow():
            return {"project": row.project, "user": row.user, "role": row.role,
                    "since_ts": row.since_ts}
        case TokenRow():
            return {"id": row.id, "user": row.user, "hash": row.hash, "prefix": row.prefix,
                    "name": row.name, "created_ts": row.created_ts,
                    "expires_ts": row.expires_ts, "revoked_ts": row.revoked_ts,
                    "created_by": row.created_by}
        case QOS():
            return {"name": row.name, "priority": row.priority,
                    "preemptible": row.preemptible, "preempts": sorted(row.preempts),
                    "max_time_limit_s": row.max_time_limit_s,
                    "max_gpus_per_user": row.max_gpus_per_user, "grace_s": row.grace_s,
                    "usage_factor": row.usage_factor, "requeue": row.requeue}
        case Grant():
            return {"id": row.id, "project": row.project, "gpu_hours": row.gpu_hours,
                    "valid_from_ts": row.valid_from_s,
                    "valid_to_ts": None if math.isinf(row.valid_to_s) else row.valid_to_s,
                    "funder": row.funder}
        case Reservation():
            return {"name": row.name, "nodes": list(row.nodes), "start_ts": row.start_s,
                    "end_ts": row.end_s, "period_s": row.period_s, "until_ts": row.until_s,
                    "projects": sorted(row.projects), "users": sorted(row.users),
                    "maintenance": row.maintenance}
    raise TypeError(f"not a tenancy row: {row!r}")


def row_from_db(table: Table, m: Mapping[Any, Any]) -> Row:
    match table:
        case Table.USERS:
            return UserRow(m["name"], m["role"], m["default_project"], m["created_ts"])
        case Table.PROJECTS:
            return ProjectRow(m["name"], m["shares"], m["max_gpus"], bool(m["metered"]),
                              bool(m["sensitive"]), m["description"], m["created_ts"])
        case Table.MEMBERS:
            return MemberRow(m["project"], m["user"], m["role"], m["since_ts"])
        case Table.TOKENS:
            return TokenRow(m["id"], m["user"], m["hash"], m["prefix"], m["name"],
                            m["created_ts"], m["expires_ts"], m["revoked_ts"],
                            m["created_by"])
        case Table.QOS:
            requeue = m["requeue"]
            return QOS(m["name"], priority=m["priority"], preemptible=bool(m["preemptible"]),
                       preempts=frozenset(m["preempts"]),
                       max_time_limit_s=m["max_time_limit_s"],
                       max_gpus_per_user=m["max_gpus_per_user"], grace_s=m["grace_s"],
                       usage_factor=m["usage_factor"],
                       requeue=None if requeue is None else bool(requeue))
        case Table.GRANTS:
            valid_to = m["valid_to_ts"]
            return Grant(m["id"], m["project"], m["gpu_hours"], valid_from_s=m["valid_from_ts"],
                         valid_to_s=math.inf if valid_to is None else valid_to,
                         funder=m["funder"])
        case Table.RESERVATIONS:
            return Reservation(m["name"], tuple(m["nodes"]), m["start_ts"], m["end_ts"],
                               period_s=m["period_s"], until_s=m["until_ts"],
                               projects=frozenset(m["projects"]),
                               users=frozenset(m["users"]),
                               maintenance=bool(m["maintenance"]))
    raise ValueError(f"no table {table!r}")
