"""Tenancy events applied to the tables, inside the append's transaction.

:func:`plan` runs the pure :func:`~gefion.store.tenancy.apply_tenancy` over the events,
reading each row it asks for once (tenancy writes are rare and touch a handful of rows:
no batching needed), and returns the rows to write; it raises before anything is written,
as the writer's contract asks. :func:`write` writes them (delete, then insert: one code
path on both backends). :func:`rebuild` replaces the tables by what the log says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from gefion.store.records import EventRow
from gefion.store.tenancy import Key, Row, Table, TenancyState, apply_tenancy, replay_tenancy
from gefion.store.tenancy_schema import TABLES, key_clause, row_from_db, row_to_db

#: (table, key) → the row after the events (None: deleted or never there).
Planned = dict[tuple[Table, Key], Row | None]


def load(conn: sa.Connection, table: Table, key: Key) -> Row | None:
    found = conn.execute(sa.select(TABLES[table]).where(key_clause(table, key))).one_or_none()
    return None if found is None else row_from_db(table, found._mapping)


def plan(conn: sa.Connection, events: Sequence[EventRow]) -> Planned:
    """The rows ``events`` (in order) leave changed; raises for a bad or conflicting one."""
    current: Planned = {}
    original: Planned = {}

    def lookup(table: Table, key: Key) -> Row | None:
        if (table, key) not in current:
            current[(table, key)] = original[(table, key)] = load(conn, table, key)
        return current[(table, key)]

    for event in events:
        for table, key, row in apply_tenancy(event, lookup):
            lookup(table, key)  # remember what was there before
            current[(table, key)] = row
    return {k: row for k, row in current.items() if row != original[k]}


def write(conn: sa.Connection, planned: Planned) -> None:
    for (table, key), row in planned.items():
        conn.execute(sa.delete(TABLES[table]).where(key_clause(table, key)))
        if row is not None:
            conn.execute(sa.insert(TABLES[table]).values(row_to_db(row)))


def rebuild(conn: sa.Connection, events: Iterable[EventRow]) -> TenancyState:
    """Replace every tenancy table by what ``events`` (the whole log, in order) say."""
    state = replay_tenancy(events)
    for table, rows in state.tables.items():
        conn.execute(sa.delete(TABLES[table]))
        if rows:
            conn.execute(sa.insert(TABLES[table]), [row_to_db(r) for r in rows.values()])
    return state
