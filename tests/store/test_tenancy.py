"""Tenancy in the store, on SQLite and PostgreSQL: every change is an event, the tables are
what the log says (live, replayed and rebuilt alike), a bad change writes nothing, and a
token is kept only as its SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from gefion.core.errors import InputError, SpecError, StateError
from gefion.core.reservations import Reservation
from gefion.core.tenancy import QOS, Grant, Project
from gefion.store import EventKind, NewEvent, NotFoundError, Store
from gefion.store.tenancy import (
    MemberRow,
    ProjectRow,
    Table,
    TenancyState,
    UserRow,
    apply_tenancy,
    default_project_for,
)
from gefion.store.tenancy_schema import TABLES, row_from_db
from tests.store.builders import new_job


def populate(store: Store) -> str:
    """A small site; returns the token of ana (revoked later by some tests)."""
    store.create_project("nlp", ts=1, by="root", shares=2.0, max_gpus=16, metered=True)
    store.create_project("bio", ts=1, by="root", sensitive=True)
    store.create_user("ana", ts=2, by="root", default_project="nlp")
    store.create_user("bo", ts=2, by="root", role="operator")
    store.add_member("nlp", "ana", ts=3, by="root", role="lead")
    store.add_member("bio", "ana", ts=3, by="root")
    store.add_member("bio", "bo", ts=3, by="root")
    store.remove_member("bio", "bo", ts=4, by="ana")
    store.add_member("bio", "ana", ts=4, by="root", role="lead")  # a role change
    _, token = store.create_token("ana", ts=5, by="root", name="laptop", expires_ts=1e10)
    store.create_token("bo", ts=5, by="root")
    store.create_qos(QOS("urgent", priority=100, preempts=frozenset({"scavenger"})), ts=6,
                     by="root")
    store.create_grant(Grant("", "nlp", 1000.0, funder="EU"), ts=6, by="root")
    store.create_grant(Grant("", "nlp", 5.0, valid_from_s=10, valid_to_s=20), ts=6, by="root")
    store.create_reservation(Reservation("daily", ("n1", "n2"), 0, 3600, period_s=86_400,
                                         projects=frozenset({"nlp"})), ts=7, by="bo")
    store.create_reservation(Reservation("gone", ("n1",), 0, 1), ts=7, by="bo")
    store.delete_reservation("gone", ts=8, by="bo")
    store.update_user("bo", ts=9, by="root", default_project="bio")
    return token


def tables(store: Store) -> TenancyState:
    state = TenancyState.empty()
    with store._engine.connect() as conn:
        for table, t in TABLES.items():
            for row in conn.execute(sa.select(t)):
                record = row_from_db(table, row._mapping)
                key = (row._mapping["project"], row._mapping["user"]) \
                    if table is Table.MEMBERS else row._mapping[t.primary_key.columns[0].name]
                state.tables[table][key] = record
    return state


def test_the_calls_and_their_rows(store: Store) -> None:
    populate(store)
    assert store.get_user("ana") == UserRow("ana", "user", "nlp", 2.0)
    assert store.get_user("bo") == UserRow("bo", "operator", "bio", 2.0)
    assert [p.name for p in store.list_projects()] == ["bio", "nlp"]
    assert store.get_project("nlp") == ProjectRow("nlp", 2.0, 16, True, False, "", 1.0)
    assert store.list_members() == [MemberRow("bio", "ana", "lead", 3.0),
                                    MemberRow("nlp", "ana", "lead", 3.0)]
    assert store.list_members(user="bo") == []
    assert store.projects() == {
        "bio": Project("bio", members=frozenset({"ana"}), sensitive=True),
        "nlp": Project("nlp", shares=2.0, members=frozenset({"ana"}), max_gpus=16,
                       metered=True)}
    assert store.list_qos() == [QOS("urgent", priority=100, preempts=frozenset({"scavenger"}))]
    assert store.list_grants() == [Grant("nlp-1", "nlp", 1000.0, 0.0, float("inf"), "EU"),
                                   Grant("nlp-2", "nlp", 5.0, 10.0, 20.0)]
    assert [r.name for r in store.list_reservations()] == ["daily"]
    assert store.list_reservations()[0].projects == frozenset({"nlp"})
    (ana_token,) = store.list_tokens("ana")
    assert (ana_token.name, ana_token.expires_ts, ana_token.created_by) == \
        ("laptop", 1e10, "root")
    assert ana_token.status(5) == "active" and ana_token.status(1e10) == "expired"


def test_every_change_is_an_event_by_its_author(store: Store) -> None:
    populate(store)
    events = store.audit_events(limit=1000)
    assert [e.kind for e in events][:4] == ["project.created", "project.created",
                                           "user.created", "user.created"]
    assert all(e.payload["by"] in ("root", "ana", "bo") for e in events)
    assert [e.payload["by"] for e in events if e.kind == "reservation.deleted"] == ["bo"]
    assert store.events_for_job(1) == [] and store.replay() == ({}, {})


def test_live_replayed_and_rebuilt_tables_agree(store: Store) -> None:
    populate(store)
    (ana,) = store.list_tokens("ana")
    store.revoke_token(ana.id, ts=10, by="ana")
    store.record_denial({"principal": "eve", "reason": "unknown"}, ts=11)
    store.submit([new_job()], ts=12)  # jobs and tenancy share the log
    live = tables(store)
    assert store.replay_tenancy() == live
    with store._engine.begin() as conn:  # lose the tenancy tables...
        for t in TABLES.values():
            conn.execute(sa.delete(t))
    assert tables(store).tables[Table.USERS] == {}
    assert store.rebuild_projections() == (1, 0)  # ... and get them back from the log
    assert tables(store) == live
    assert store.get_token(ana.id).revoked_ts == 10  # type: ignore[union-attr]


@pytest.mark.parametrize(("call", "error", "field"), [
    (lambda s: s.create_user("ana", ts=1, by="x"), StateError, None),
    (lambda s: s.create_user("new", ts=1, by="x", role="king"), InputError, "payload.role"),
    (lambda s: s.create_user("a b", ts=1, by="x"), InputError, "name"),
    (lambda s: s.create_user("new", ts=1, by="x", default_project="none"), NotFoundError,
     "default_project"),
    (lambda s: s.create_project("nlp", ts=1, by="x"), StateError, None),
    (lambda s: s.create_project("p", ts=1, by="x", shares=-1), SpecError, "shares"),
    (lambda s: s.add_member("nlp", "ghost", ts=1, by="x"), NotFoundError, "user"),
    (lambda s: s.add_member("none", "ana", ts=1, by="x"), NotFoundError, "project"),
    (lambda s: s.add_member("nlp", "ana", ts=1, by="x", role="lead"), StateError, None),
    (lambda s: s.remove_member("nlp", "bo", ts=1, by="x"), NotFoundError, "user"),
    (lambda s: s.create_token("ghost", ts=1, by="x"), NotFoundError, "user"),
    (lambda s: s.create_token("ana", ts=5, by="x", expires_ts=5), InputError, "expires_ts"),
    (lambda s: s.revoke_token("nope", ts=1, by="x"), NotFoundError, "id"),
    (lambda s: s.create_qos(QOS("urgent"), ts=1, by="x"), StateError, None),
    (lambda s: s.create_grant(Grant("nlp-1", "nlp", 1), ts=1, by="x"), StateError, None),
    (lambda s: s.create_grant(Grant("g", "none", 1), ts=1, by="x"), NotFoundError,
     "project"),
    (lambda s: s.create_reservation(Reservation("daily", ("n1",), 0, 1), ts=1, by="x"),
     StateError, None),
    (lambda s: s.create_reservation(Reservation("r", ("n1",), 0, 1,
                                                users=frozenset({"ghost"})), ts=1, by="x"),
     NotFoundError, "users"),
    (lambda s: s.delete_reservation("gone", ts=1, by="x"), NotFoundError, "name"),
    (lambda s: s.update_user("ana", ts=1, by="x"), InputError, "payload"),
    (lambda s: s.append([NewEvent(EventKind.TOKEN_CREATED, 1, payload={
        "id": "t1", "user": "ana", "hash": "not-hex", "prefix": "gfn_x"})]), InputError,
     "payload.hash"),
])
def test_a_bad_change_raises_and_writes_nothing(store: Store, call: object,
                                                error: type[Exception],
                                                field: str | None) -> None:
    populate(store)
    seq = store.last_seq()
    before = tables(store)
    with pytest.raises(error) as raised:
        call(store)  # type: ignore[operator]
    assert getattr(raised.value, "field", None) == field
    assert store.last_seq() == seq and tables(store) == before


def test_a_token_is_kept_only_as_its_hash(store: Store, backend: str,
                                          tmp_path: Path) -> None:
    token = populate(store)
    digest = hashlib.sha256(token.encode()).hexdigest()
    (row,) = store.list_tokens("ana")
    assert row.hash == digest and row.prefix == token[:12]
    found = store.principal_rows(digest)
    assert found is not None
    assert (found[0].id, found[1].name, found[2]) == (row.id, "ana",
                                                      {"nlp": "lead", "bio": "lead"})
    assert store.principal_rows(hashlib.sha256(b"guess").hexdigest()) is None
    with store._engine.connect() as conn:  # every value of every table, and the log
        everything = [str(tuple(r)) for t in (*TABLES.values(),
                                              sa.table("events", sa.column("payload")))
                      for r in conn.execute(sa.select(sa.text("*")).select_from(t))]
    assert digest in "".join(everything)
    assert not any(token in text or token[4:] in text for text in everything)
    if backend == "sqlite":
        path = Path(str(store._engine.url.database))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert digest.encode() in raw and token[4:].encode() not in raw


def test_a_revoked_token_still_names_its_user(store: Store) -> None:
    token = populate(store)
    (row,) = store.list_tokens("ana")
    store.revoke_token(row.id, ts=10, by="ana")
    found = store.principal_rows(hashlib.sha256(token.encode()).hexdigest())
    assert found is not None and found[0].status(11) == "revoked"
    with pytest.raises(StateError, match="revoked already"):
        store.revoke_token(row.id, ts=12, by="ana")


def test_denials_are_audit_events_only(store: Store) -> None:
    populate(store)
    before = tables(store)
    seq = store.record_denial({"principal": "eve", "reason": "forbidden",
                               "route": "POST /v1/nodes/{name}/drain"}, ts=20)
    (event,) = store.audit_events(after_seq=seq - 1, kinds=["access.denied"])
    assert event.payload["principal"] == "eve" and tables(store) == before
    store.append([NewEvent(EventKind.NODE_REGISTERED, 21, node="n1",
                           payload={"gpus": 8, "su": "su1"})])
    assert [e.kind for e in store.audit_events(after_seq=seq - 1)] == ["access.denied"]


def test_the_projection_is_pure() -> None:
    """The same event and rows give the same changes, whatever the store."""
    from gefion.store.records import EventRow

    event = EventRow(7, 3.0, "member.added", None, None,
                     {"project": "nlp", "user": "ana", "role": "lead", "by": "root"})
    rows = {(Table.PROJECTS, "nlp"): ProjectRow("nlp"), (Table.USERS, "ana"): UserRow("ana")}
    changes = apply_tenancy(event, lambda t, k: rows.get((t, k)))  # type: ignore[arg-type]
    assert changes == [(Table.MEMBERS, ("nlp", "ana"), MemberRow("nlp", "ana", "lead", 3.0))]
    with pytest.raises(InputError, match="not a tenancy event"):
        apply_tenancy(EventRow(1, 1.0, "job.held", 1, None, {}), lambda t, k: None)


@pytest.mark.parametrize(("user", "projects", "expected"), [
    (UserRow("ana", default_project="chem"), {"nlp": "member"}, "chem"),
    (UserRow("ana"), {"nlp": "member"}, "nlp"),
    (UserRow("ana"), {"nlp": "member", "bio": "lead"}, "default"),
    (UserRow("ana"), {}, "default"),
])
def test_the_default_project(user: UserRow, projects: dict[str, str], expected: str) -> None:
    assert default_project_for(user, projects, "default") == expected


def test_every_tenancy_commit_moves_the_version(store: Store) -> None:
    """What the API's token cache watches: any tenancy change, however appended; not a
    denial or a job."""
    version = store.tenancy_version
    store.create_project("nlp", ts=1, by="root")
    assert store.tenancy_version > version
    version = store.tenancy_version
    store.append([NewEvent(EventKind.USER_CREATED, 2, payload={"name": "ana", "by": "x"})])
    assert store.tenancy_version > version
    version = store.tenancy_version
    store.record_denial({"principal": "eve"}, ts=3)
    store.submit([new_job()], ts=4)
    assert store.tenancy_version == version
    store.rebuild_projections()
    assert store.tenancy_version > version
