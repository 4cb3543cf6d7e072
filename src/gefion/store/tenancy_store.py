"""The store's tenancy calls (a base class of :class:`~gefion.store.Store`): people, projects,
memberships, tokens, QOS, grants, reservations, and the audit trail.

Every change is a tenancy event appended to the log (``by`` names who made it), applied to
the tables in the same transaction by :func:`~gefion.store.tenancy.apply_tenancy`; a bad
or conflicting change raises before anything is written (see :meth:`Store.append`).

For the controller::

    store.list_projects()      # ProjectRow (to_project(members) gives the core's Project)
    store.projects()           # name → core Project, members filled in
    store.list_qos()           # core QOS        store.list_grants()   # core Grant
    store.list_reservations()  # core Reservation

:attr:`TenancyStore.tenancy_version` grows with every tenancy change this process commits
(however it was appended) and every rebuild: a cache of who-may-do-what (the API's)
compares it to know when to forget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from gefion.core.errors import InputError
from gefion.core.reservations import Reservation
from gefion.core.tenancy import QOS, Grant, Project
from gefion.store import tenancy_ops
from gefion.store import tokens as token_lib
from gefion.store.records import EventKind, EventRow, NewEvent
from gefion.store.schema import event_from_db, events
from gefion.store.tenancy import (
    MemberRow,
    ProjectRow,
    Row,
    Table,
    TenancyState,
    TokenRow,
    UserRow,
    check_name,
    grant_to_json,
    qos_to_json,
    replay_tenancy,
    reservation_to_json,
)
from gefion.store.tenancy_schema import TABLES, memberships, row_from_db, tokens, users

#: ``update_user(default_project=UNSET)``: leave it as it is.
UNSET: Any = object()
R = TypeVar("R")


class TenancyStore:
    """Tenancy calls of the store; see the module."""

    #: Tenancy changes committed by this process so far (see the module).
    tenancy_version: int = 0

    if TYPE_CHECKING:
        def _read(self) -> sa.Connection: ...
        def append(self, events: Sequence[NewEvent]) -> list[int]: ...

    # -- writes -----------------------------------------------------------------------
    def create_user(self, name: str, *, ts: float, by: str, role: str = "user",
                    default_project: str | None = None) -> UserRow:
        check_name(name, "name")
        self._change(EventKind.USER_CREATED, ts, by, name=name, role=role,
                     default_project=default_project)
        return self._get(Table.USERS, name, UserRow)

    def update_user(self, name: str, *, ts: float, by: str, role: str | None = None,
                    default_project: str | None = UNSET) -> UserRow:
        """Change a user's site role and/or default project (None clears it)."""
        check_name(name, "name")
        fields: dict[str, Any] = {} if role is None else {"role": role}
        if default_project is not UNSET:
            fields["default_project"] = default_project
        self._change(EventKind.USER_UPDATED, ts, by, name=name, **fields)
        return self._get(Table.USERS, name, UserRow)

    def create_project(self, name: str, *, ts: float, by: str, shares: float = 1.0,
                       max_gpus: int | None = None, metered: bool = False,
                       sensitive: bool = False, description: str = "") -> ProjectRow:
        check_name(name, "name")
        self._change(EventKind.PROJECT_CREATED, ts, by, name=name, shares=shares,
                     max_gpus=max_gpus, metered=metered, sensitive=sensitive,
                     description=description)
        return self._get(Table.PROJECTS, name, ProjectRow)

    def add_member(self, project: str, user: str, *, ts: float, by: str,
                   role: str = "member") -> MemberRow:
        """Make ``user`` a ``role`` of ``project`` (a member already: change the role)."""
        check_name(project, "project")
        check_name(user, "user")
        self._change(EventKind.MEMBER_ADDED, ts, by, project=project, user=user, role=role)
        return self._get(Table.MEMBERS, (project, user), MemberRow)

    def remove_member(self, project: str, user: str, *, ts: float, by: str) -> None:
        check_name(project, "project")
        check_name(user, "user")
        self._change(EventKind.MEMBER_REMOVED, ts, by, project=project, user=user)

    def create_token(self, user: str, *, ts: float, by: str, name: str = "",
                     expires_ts: float | None = None) -> tuple[TokenRow, str]:
        """A new token for ``user``: its row, and the token itself — the only time it is
        seen; the store keeps its SHA-256 (see :mod:`gefion.store.tokens`)."""
        check_name(user, "user")
        if expires_ts is not None and expires_ts <= ts:
            raise InputError("a token must expire after it is made", field="expires_ts")
        secret = token_lib.new_token()
        token_id = token_lib.new_token_id()
        self._change(EventKind.TOKEN_CREATED, ts, by, id=token_id, user=user,
                     hash=token_lib.token_hash(secret), prefix=token_lib.display_prefix(secret),
                     name=name, expires_ts=expires_ts)
        return self._get(Table.TOKENS, token_id, TokenRow), secret

    def revoke_token(self, token_id: str, *, ts: float, by: str) -> TokenRow:
        check_name(token_id, "id")
        self._change(EventKind.TOKEN_REVOKED, ts, by, id=token_id)
        return self._get(Table.TOKENS, token_id, TokenRow)

    def create_qos(self, qos: QOS, *, ts: float, by: str) -> QOS:
        check_name(qos.name, "name")
        self._change(EventKind.QOS_CREATED, ts, by, **qos_to_json(qos))
        return self._get(Table.QOS, qos.name, QOS)

    def create_grant(self, grant: Grant, *, ts: float, by: str) -> Grant:
        """Record ``grant``; an empty ``id`` gets ``PROJECT-N``, the project's next number."""
        check_name(grant.project, "project")
        payload = grant_to_json(grant)
        if not grant.id:
            taken = {g.id for g in self.list_grants(grant.project)}
            n = len(taken) + 1
            while f"{grant.project}-{n}" in taken:
                n += 1
            payload["id"] = f"{grant.project}-{n}"
        check_name(payload["id"], "id")
        self._change(EventKind.GRANT_CREATED, ts, by, **payload)
        return self._get(Table.GRANTS, payload["id"], Grant)

    def create_reservation(self, reservation: Reservation, *, ts: float,
                           by: str) -> Reservation:
        check_name(reservation.name, "name")
        self._change(EventKind.RESERVATION_CREATED, ts, by,
                     **reservation_to_json(reservation))
        return self._get(Table.RESERVATIONS, reservation.name, Reservation)

    def delete_reservation(self, name: str, *, ts: float, by: str) -> None:
        check_name(name, "name")
        self._change(EventKind.RESERVATION_DELETED, ts, by, name=name)

    def record_denial(self, payload: Mapping[str, Any], *, ts: float) -> int:
        """Append an ``access.denied`` event (audit only); its ``seq``."""
        (seq,) = self.append([NewEvent(EventKind.ACCESS_DENIED, ts, payload=dict(payload))])
        return seq

    # -- reads ------------------------------------------------------------------------
    def get_user(self, name: str) -> UserRow | None:
        return self._find(Table.USERS, name, UserRow)

    def list_users(self) -> list[UserRow]:
        return self._all(Table.USERS, UserRow)

    def get_project(self, name: str) -> ProjectRow | None:
        return self._find(Table.PROJECTS, name, ProjectRow)

    def list_projects(self) -> list[ProjectRow]:
        return self._all(Table.PROJECTS, ProjectRow)

    def list_members(self, project: str | None = None,
                     user: str | None = None) -> list[MemberRow]:
        """Memberships by project, then user; only ``project``'s or ``user``'s if given."""
        query = sa.select(memberships)
        if project is not None:
            query = query.where(memberships.c.project == project)
        if user is not None:
            query = query.where(memberships.c.user == user)
        with self._read() as conn:
            rows = conn.execute(query.order_by(memberships.c.project,
                                               memberships.c.user)).all()
        return [_as(row_from_db(Table.MEMBERS, r._mapping), MemberRow) for r in rows]

    def projects(self) -> dict[str, Project]:
        """Every project as the core's record, its members filled in, by name."""
        members: dict[str, set[str]] = {}
        for m in self.list_members():
            members.setdefault(m.project, set()).add(m.user)
        return {p.name: p.to_project(members.get(p.name, ())) for p in self.list_projects()}

    def get_token(self, token_id: str) -> TokenRow | None:
        return self._find(Table.TOKENS, token_id, TokenRow)

    def list_tokens(self, user: str | None = None) -> list[TokenRow]:
        """Tokens (hashes and prefixes: never a token), by creation; ``user``'s if given."""
        query = sa.select(tokens)
        if user is not None:
            query = query.where(tokens.c.user == user)
        with self._read() as conn:
            rows = conn.execute(query.order_by(tokens.c.created_ts, tokens.c.id)).all()
        return [_as(row_from_db(Table.TOKENS, r._mapping), TokenRow) for r in rows]

    def principal_rows(self, digest: str
                       ) -> tuple[TokenRow, UserRow, dict[str, str]] | None:
        """Who the token with SHA-256 ``digest`` belongs to: its row, its user's, and the
        user's projects (name → role); None for an unknown token. Two indexed reads."""
        with self._read() as conn:
            found = conn.execute(sa.select(tokens).where(tokens.c.hash == digest)).one_or_none()
            if found is None:
                return None
            token = _as(row_from_db(Table.TOKENS, found._mapping), TokenRow)
            user_row = conn.execute(sa.select(users).where(users.c.name == token.user)
                                    ).one_or_none()
            if user_row is None:
                return None
            roles = conn.execute(sa.select(memberships.c.project, memberships.c.role)
                                 .where(memberships.c.user == token.user)).all()
        return (token, _as(row_from_db(Table.USERS, user_row._mapping), UserRow),
                {project: role for project, role in roles})

    def list_qos(self) -> list[QOS]:
        return self._all(Table.QOS, QOS)

    def list_grants(self, project: str | None = None) -> list[Grant]:
        grants = self._all(Table.GRANTS, Grant)
        return [g for g in grants if project is None or g.project == project]

    def list_reservations(self) -> list[Reservation]:
        return self._all(Table.RESERVATIONS, Reservation)

    def audit_events(self, *, after_seq: int = 0, limit: int = 100,
                     kinds: Sequence[str] | None = None) -> list[EventRow]:
        """Events about neither a job nor a node — tenancy changes and denials — after
        ``after_seq``, in order, at most ``limit`` (≤ 10,000)."""
        if not 1 <= limit <= 10_000:
            raise InputError(f"must be 1..10000, got {limit}", field="limit")
        query = sa.select(events).where(events.c.job_id.is_(None), events.c.node.is_(None),
                                        events.c.seq > after_seq)
        if kinds:
            query = query.where(events.c.kind.in_(list(kinds)))
        with self._read() as conn:
            rows = conn.execute(query.order_by(events.c.seq).limit(limit)).all()
        return [event_from_db(r) for r in rows]

    def replay_tenancy(self) -> TenancyState:
        """The tenancy tables as the log alone says (the tables are not touched)."""
        from gefion.store.ops import read_events

        with self._read() as conn:
            return replay_tenancy(read_events(conn))

    # -- plumbing ---------------------------------------------------------------------
    def _change(self, kind: EventKind, ts: float, by: str, **payload: Any) -> None:
        # The store's commit hook moves tenancy_version before append returns.
        self.append([NewEvent(kind, ts, payload={**payload, "by": by})])

    def _find(self, table: Table, key: str, cls: type[R]) -> R | None:
        with self._read() as conn:
            found = tenancy_ops.load(conn, table, key)
        return None if found is None else _as(found, cls)

    def _get(self, table: Table, key: str | tuple[str, str], cls: type[R]) -> R:
        with self._read() as conn:
            return _as(tenancy_ops.load(conn, table, key), cls)

    def _all(self, table: Table, cls: type[R]) -> list[R]:
        t = TABLES[table]
        with self._read() as conn:
            rows = conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all()
        return [_as(row_from_db(table, r._mapping), cls) for r in rows]


def _as(row: Row | None, cls: type[R]) -> R:
    assert isinstance(row, cls), row
    return row
