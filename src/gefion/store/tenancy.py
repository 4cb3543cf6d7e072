"""Tenancy as a projection of the log: people, projects, memberships, tokens, QOS, grants and
reservations, each changed only by an event (``user.created``, ``member.added``,
``token.revoked``...; see :class:`~gefion.store.records.EventKind`).

``apply_tenancy(event, lookup)`` is pure, like the jobs projection: it reads the rows it
needs through ``lookup`` and returns the rows it changes, or raises before anything is
written — :class:`InputError` for a malformed event, :class:`NotFoundError` for a project
or user that does not exist, :class:`StateError` for a change that conflicts (a name taken,
a token revoked twice). The live store (:mod:`gefion.store.tenancy_ops`) and
:func:`replay_tenancy` call the same function, so the tables rebuilt from the log are the
live ones. QOS, grants and reservations are the core's own records
(:mod:`gefion.core.tenancy`, :mod:`gefion.core.reservations`), validated by them.

Roles: a user's site role is ``admin``, ``operator`` or ``user``; a membership's role in a
project is ``lead`` or ``member``. Times are seconds since the epoch (``*_ts``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeAlias

from gefion.core.errors import InputError, StateError
from gefion.core.reservations import Reservation
from gefion.core.tenancy import QOS, Grant, Project
from gefion.store.errors import NotFoundError
from gefion.store.records import EventKind, EventRow

SITE_ROLES = ("admin", "operator", "user")
PROJECT_ROLES = ("lead", "member")
#: Names of users, projects, QOS, grants and reservations: what a Unix login or a Slurm
#: account may be called (no spaces, brackets or commas, which hostlists and CLIs split on).
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


class Table(StrEnum):
    USERS = "users"
    PROJECTS = "projects"
    MEMBERS = "memberships"
    TOKENS = "tokens"
    QOS = "qos"
    GRANTS = "grants"
    RESERVATIONS = "reservations"


@dataclass(frozen=True, slots=True)
class UserRow:
    """A person (or a service account). ``default_project``: where a job without
    ``-A/--account`` goes (None: see :func:`default_project_for`)."""

    name: str
    role: str = "user"
    default_project: str | None = None
    created_ts: float = 0.0


@dataclass(frozen=True, slots=True)
class ProjectRow:
    """A project as the store keeps it; :meth:`to_project` gives the core's record."""

    name: str
    shares: float = 1.0
    max_gpus: int | None = None
    metered: bool = False
    sensitive: bool = False
    description: str = ""
    created_ts: float = 0.0

    def to_project(self, members: Iterable[str] = ()) -> Project:
        return Project(self.name, shares=self.shares, members=frozenset(members),
                       max_gpus=self.max_gpus, metered=self.metered, sensitive=self.sensitive)


@dataclass(frozen=True, slots=True)
class MemberRow:
    """``user`` belongs to ``project`` as ``role`` (``lead`` or ``member``)."""

    project: str
    user: str
    role: str = "member"
    since_ts: float = 0.0


@dataclass(frozen=True, slots=True)
class TokenRow:
    """An API token as the store keeps it: never the token, only its SHA-256 (``hash``)
    and the first characters (``prefix``) for listings."""

    id: str
    user: str
    hash: str
    prefix: str
    name: str = ""
    created_ts: float = 0.0
    expires_ts: float | None = None
    revoked_ts: float | None = None
    created_by: str = ""

    def status(self, now: float) -> str:
        """``active``, ``expired`` or ``revoked`` at ``now``."""
        if self.revoked_ts is not None:
            return "revoked"
        if self.expires_ts is not None and now >= self.expires_ts:
            return "expired"
        return "active"


Key: TypeAlias = str | tuple[str, str]
Row: TypeAlias = UserRow | ProjectRow | MemberRow | TokenRow | QOS | Grant | Reservation
#: ``lookup(table, key)``: the row as it stands (None: there is none).
Lookup = Callable[[Table, Key], Row | None]
#: A row the event changes: (table, key, new row or None for a deletion).
Change = tuple[Table, Key, Row | None]


def apply_tenancy(event: EventRow, lookup: Lookup) -> list[Change]:
    """The rows ``event`` changes. Raises (see the module) before anything is written."""
    try:
        kind = EventKind(event.kind)
    except ValueError:
        raise InputError(f"unknown event kind {event.kind!r}", field="kind") from None
    if kind.domain != "tenancy":
        raise InputError(f"{kind} is not a tenancy event", field="kind")
    p = event.payload
    match kind:
        case EventKind.USER_CREATED:
            name = _name(p, "name")
            if lookup(Table.USERS, name) is not None:
                raise StateError(f"user {name!r} exists already")
            user = UserRow(name, _choice(p, "role", SITE_ROLES, "user"),
                           _project_ref(p, "default_project", lookup), event.ts)
            return [(Table.USERS, name, user)]
        case EventKind.USER_UPDATED:
            user = _user(p, "name", lookup)
            changed = user
            if "role" in p:
                changed = replace(changed, role=_choice(p, "role", SITE_ROLES, "user"))
            if "default_project" in p:
                changed = replace(changed,
                                  default_project=_project_ref(p, "default_project", lookup))
            if "role" not in p and "default_project" not in p:
                raise InputError("nothing to change: give role or default_project",
                                 field="payload")
            return [(Table.USERS, user.name, changed)]
        case EventKind.PROJECT_CREATED:
            name = _name(p, "name")
            if lookup(Table.PROJECTS, name) is not None:
                raise StateError(f"project {name!r} exists already")
            created = ProjectRow(name, _number(p, "shares", 1.0), _count(p, "max_gpus"),
                                 _flag(p, "metered"), _flag(p, "sensitive"),
                                 _text(p, "description", 255), event.ts)
            created.to_project()  # the core's checks (shares >= 0...)
            return [(Table.PROJECTS, name, created)]
        case EventKind.MEMBER_ADDED:
            project = _existing_project(p, "project", lookup)
            user = _user(p, "user", lookup)
            role = _choice(p, "role", PROJECT_ROLES, "member")
            key = (project, user.name)
            old = lookup(Table.MEMBERS, key)
            if isinstance(old, MemberRow) and old.role == role:
                raise StateError(f"{user.name!r} is a {role} of project {project!r} already")
            since = old.since_ts if isinstance(old, MemberRow) else event.ts
            return [(Table.MEMBERS, key, MemberRow(project, user.name, role, since))]
        case EventKind.MEMBER_REMOVED:
            project, user_name = _name(p, "project"), _name(p, "user")
            if lookup(Table.MEMBERS, (project, user_name)) is None:
                raise NotFoundError(f"{user_name!r} is not a member of project {project!r}",
                                    field="user")
            return [(Table.MEMBERS, (project, user_name), None)]
        case EventKind.TOKEN_CREATED:
            token_id = _name(p, "id")
            if lookup(Table.TOKENS, token_id) is not None:
                raise StateError(f"token {token_id!r} exists already")
            digest = _text(p, "hash", 64)
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise InputError("must be a SHA-256 in hex", field="payload.hash")
            token = TokenRow(token_id, _user(p, "user", lookup).name, digest,
                             _text(p, "prefix", 16), _text(p, "name", 255), event.ts,
                             _ts(p, "expires_ts"), None, _text(p, "by", 255))
            return [(Table.TOKENS, token_id, token)]
        case EventKind.TOKEN_REVOKED:
            token_id = _name(p, "id")
            old = lookup(Table.TOKENS, token_id)
            if not isinstance(old, TokenRow):
                raise NotFoundError(f"no token {token_id!r}", field="id")
            if old.revoked_ts is not None:
                raise StateError(f"token {token_id!r} is revoked already")
            return [(Table.TOKENS, token_id, replace(old, revoked_ts=event.ts))]
        case EventKind.QOS_CREATED:
            qos = qos_from_json(p)
            if lookup(Table.QOS, qos.name) is not None:
                raise StateError(f"QOS {qos.name!r} exists already")
            return [(Table.QOS, qos.name, qos)]
        case EventKind.GRANT_CREATED:
            grant = grant_from_json(p)
            _existing_project(p, "project", lookup)
            if lookup(Table.GRANTS, grant.id) is not None:
                raise StateError(f"grant {grant.id!r} exists already")
            return [(Table.GRANTS, grant.id, grant)]
        case EventKind.RESERVATION_CREATED:
            reservation = reservation_from_json(p)
            if lookup(Table.RESERVATIONS, reservation.name) is not None:
                raise StateError(f"reservation {reservation.name!r} exists already")
            for project in sorted(reservation.projects):
                if lookup(Table.PROJECTS, project) is None:
                    raise NotFoundError(f"no project {project!r}", field="projects")
            for user_name in sorted(reservation.users):
                if lookup(Table.USERS, user_name) is None:
                    raise NotFoundError(f"no user {user_name!r}", field="users")
            return [(Table.RESERVATIONS, reservation.name, reservation)]
        case EventKind.RESERVATION_DELETED:
            name = _name(p, "name")
            if lookup(Table.RESERVATIONS, name) is None:
                raise NotFoundError(f"no reservation {name!r}", field="name")
            return [(Table.RESERVATIONS, name, None)]
    raise InputError(f"{kind} is not handled by the tenancy projection", field="kind")


@dataclass
class TenancyState:
    """Every tenancy table in memory, by key (what :func:`replay_tenancy` returns)."""

    tables: dict[Table, dict[Key, Row]]

    @classmethod
    def empty(cls) -> TenancyState:
        return cls({table: {} for table in Table})

    def lookup(self, table: Table, key: Key) -> Row | None:
        return self.tables[table].get(key)

    def apply(self, changes: Iterable[Change]) -> None:
        for table, key, row in changes:
            if row is None:
                self.tables[table].pop(key, None)
            else:
                self.tables[table][key] = row


def replay_tenancy(events: Iterable[EventRow]) -> TenancyState:
    """The tenancy tables the log says (events in ``seq`` order; others are skipped)."""
    state = TenancyState.empty()
    for event in events:
        try:
            domain = EventKind(event.kind).domain
        except ValueError:
            raise InputError(f"unknown event kind {event.kind!r}", field="kind") from None
        if domain == "tenancy":
            state.apply(apply_tenancy(event, state.lookup))
    return state


def default_project_for(user: UserRow, projects: Mapping[str, str],
                        site_default: str) -> str:
    """Where ``user``'s job without ``-A`` goes: their own default, else their only project,
    else the site's default project."""
    if user.default_project:
        return user.default_project
    if len(projects) == 1:
        return next(iter(projects))
    return site_default


# -- the core's records as JSON ---------------------------------------------------------

def qos_to_json(qos: QOS) -> dict[str, Any]:
    return {"name": qos.name, "priority": qos.priority, "preemptible": qos.preemptible,
            "preempts": sorted(qos.preempts), "max_time_limit_s": qos.max_time_limit_s,
            "max_gpus_per_user": qos.max_gpus_per_user, "grace_s": qos.grace_s,
            "usage_factor": qos.usage_factor, "requeue": qos.requeue}


def qos_from_json(p: Mapping[str, Any]) -> QOS:
    requeue = p.get("requeue")
    if requeue is not None and not isinstance(requeue, bool):
        raise InputError(f"must be true, false or null, got {requeue!r}",
                         field="payload.requeue")
    grace_s = _count(p, "grace_s")
    return QOS(_name(p, "name"), priority=_number(p, "priority", 0.0),
               preemptible=_flag(p, "preemptible"),
               preempts=frozenset(_names(p, "preempts")),
               max_time_limit_s=_count(p, "max_time_limit_s"),
               max_gpus_per_user=_count(p, "max_gpus_per_user"),
               grace_s=60 if grace_s is None else grace_s,
               usage_factor=_number(p, "usage_factor", 1.0), requeue=requeue)


def grant_to_json(grant: Grant) -> dict[str, Any]:
    return {"id": grant.id, "project": grant.project, "gpu_hours": grant.gpu_hours,
            "valid_from_ts": grant.valid_from_s,
            "valid_to_ts": None if math.isinf(grant.valid_to_s) else grant.valid_to_s,
            "funder": grant.funder}


def grant_from_json(p: Mapping[str, Any]) -> Grant:
    valid_to = _ts(p, "valid_to_ts")
    return Grant(_name(p, "id"), _name(p, "project"), _number(p, "gpu_hours", None),
                 valid_from_s=_ts(p, "valid_from_ts") or 0.0,
                 valid_to_s=math.inf if valid_to is None else valid_to,
                 funder=_text(p, "funder", 255))


def reservation_to_json(r: Reservation) -> dict[str, Any]:
    return {"name": r.name, "nodes": list(r.nodes), "start_ts": r.start_s, "end_ts": r.end_s,
            "period_s": r.period_s, "until_ts": r.until_s, "projects": sorted(r.projects),
            "users": sorted(r.users), "maintenance": r.maintenance}


def reservation_from_json(p: Mapping[str, Any]) -> Reservation:
    nodes = p.get("nodes")
    if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
        raise InputError("must be a list of node names", field="payload.nodes")
    start, end = _ts(p, "start_ts"), _ts(p, "end_ts")
    if start is None or end is None:
        raise InputError("a reservation needs a start and an end",
                         field="payload.start_ts" if start is None else "payload.end_ts")
    return Reservation(_name(p, "name"), tuple(nodes), start, end,
                       period_s=_ts(p, "period_s"), until_s=_ts(p, "until_ts"),
                       projects=frozenset(_names(p, "projects")),
                       users=frozenset(_names(p, "users")),
                       maintenance=_flag(p, "maintenance"))


# -- payload fields ---------------------------------------------------------------------

def _text(p: Mapping[str, Any], key: str, limit: int) -> str:
    value = p.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(f"must be text, got {value!r}", field=f"payload.{key}")
    if len(value) > limit:
        raise InputError(f"must be at most {limit} characters", field=f"payload.{key}")
    return value


def check_name(value: object, field: str) -> str:
    """``value`` if it is a valid name (see :data:`NAME`), else :class:`InputError`."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InputError(f"must be a name of 1-64 letters, digits, '_', '.' or '-' (not "
                         f"starting with '.' or '-'), got {value!r}", field=field)
    return value


def _name(p: Mapping[str, Any], key: str) -> str:
    return check_name(p.get(key), f"payload.{key}")


def _names(p: Mapping[str, Any], key: str) -> list[str]:
    values = p.get(key) or []
    if not isinstance(values, list):
        raise InputError("must be a list of names", field=f"payload.{key}")
    return [check_name(v, f"payload.{key}") for v in values]


def _choice(p: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = p.get(key, default)
    if value not in choices:
        raise InputError(f"must be one of {', '.join(choices)}, got {value!r}",
                         field=f"payload.{key}")
    return str(value)


def _flag(p: Mapping[str, Any], key: str) -> bool:
    value = p.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"must be true or false, got {value!r}", field=f"payload.{key}")
    return value


def _number(p: Mapping[str, Any], key: str, default: float | None) -> float:
    value = p.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) \
            or not math.isfinite(value):
        raise InputError(f"must be a finite number, got {value!r}", field=f"payload.{key}")
    return float(value)


def _ts(p: Mapping[str, Any], key: str) -> float | None:
    return None if p.get(key) is None else _number(p, key, None)


def _count(p: Mapping[str, Any], key: str) -> int | None:
    value = p.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"must be a whole number >= 0, got {value!r}",
                         field=f"payload.{key}")
    return value


def _user(p: Mapping[str, Any], key: str, lookup: Lookup) -> UserRow:
    name = _name(p, key)
    user = lookup(Table.USERS, name)
    if not isinstance(user, UserRow):
        raise NotFoundError(f"no user {name!r}", field=key)
    return user


def _existing_project(p: Mapping[str, Any], key: str, lookup: Lookup) -> str:
    name = _name(p, key)
    if lookup(Table.PROJECTS, name) is None:
        raise NotFoundError(f"no project {name!r}", field=key)
    return name


def _project_ref(p: Mapping[str, Any], key: str, lookup: Lookup) -> str | None:
    return None if p.get(key) is None else _existing_project(p, key, lookup)
