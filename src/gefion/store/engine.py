"""Engines for the two backends, configured alike, and the Alembic migration run.

SQLite (a file; the default body of a small site): WAL journal, so readers never block
the writer; ``synchronous=NORMAL`` (a commit is in the WAL before it returns: it survives
a crash of the process, ``kill -9`` included, but not of the machine or its power) or, with
``durable=True``, ``synchronous=FULL`` (the WAL is fsynced at every commit: survives power
loss too); foreign keys on; a busy timeout so a second process waits instead of failing.
SQLAlchemy emits BEGIN itself (the sqlite3 module's implicit transactions are off), and a
writing transaction begins ``IMMEDIATE``: it takes the write lock up front, so two writers
queue on the busy timeout instead of deadlocking on a lock upgrade.

PostgreSQL (production) through psycopg 3; a ``postgresql://`` URL is mapped to it.
Durability is the server's (``synchronous_commit = on`` by default).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from gefion.core.errors import InputError
from gefion.store.errors import SchemaError

#: Execution option marking a connection that writes: SQLite begins it IMMEDIATE.
WRITE_OPTION = "gefion_write"
SCRIPT_LOCATION = "gefion.store:migrations"
#: Serializes concurrent migrations of one PostgreSQL database (any 64-bit number will do).
_PG_MIGRATION_LOCK = 0x6765_6669_6F6E  # "gefion"


def normalize_url(url: str) -> sa.URL:
    """``url`` as SQLAlchemy URL for a supported backend, else :class:`InputError`.

    ``sqlite:///path`` (a file; in-memory databases are refused: every pooled connection
    would see its own empty database) and ``postgresql[+psycopg]://...``.
    """
    try:
        u = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise InputError(f"not a database URL: {url!r}", field="url") from None
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return u.set(drivername="postgresql+psycopg")
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        if not u.database or u.database == ":memory:" or u.database.startswith("file:"):
            raise InputError("SQLite needs a file: sqlite:///path/to/gefion.db", field="url")
        return u.set(drivername="sqlite+pysqlite")
    raise InputError(f"unsupported database {u.drivername!r}; use sqlite:///path or "
                     "postgresql://user:password@host/db", field="url")


def create_engine(url: sa.URL, *, durable: bool = False, busy_timeout_s: float = 30.0,
                  pool_size: int = 10, max_overflow: int = 30) -> sa.Engine:
    """An engine for ``url`` (from :func:`normalize_url`) with the settings above."""
    if url.get_backend_name() == "sqlite":
        if sqlite3.sqlite_version_info < (3, 35):
            raise SchemaError(f"the store needs SQLite 3.35 or newer (RETURNING); this "
                              f"Python has {sqlite3.sqlite_version}")
        assert url.database is not None
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, pool_size=pool_size, max_overflow=max_overflow,
                                  connect_args={"check_same_thread": False})
        _configure_sqlite(engine, synchronous="FULL" if durable else "NORMAL",
                          busy_timeout_ms=int(busy_timeout_s * 1000))
        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=max_overflow)


def _configure_sqlite(engine: sa.Engine, *, synchronous: str, busy_timeout_ms: int) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # no implicit BEGIN; _on_begin below emits it
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            _enable_wal(cursor, busy_timeout_ms / 1000)
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        writes = conn.get_execution_options().get(WRITE_OPTION, False)
        # straight on the driver: exec_driver_sql costs more than the BEGIN itself
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if writes else "BEGIN")


def _enable_wal(cursor: sqlite3.Cursor, timeout_s: float) -> None:
    """Put the database in WAL mode (a no-op once it is: the mode is kept in the file).

    Switching a new database to WAL takes its exclusive lock, and SQLite answers "database
    is locked" at once, without its busy handler, while another connection holds a lock —
    as when several processes open a new database together. So wait here, as the busy
    timeout would, and retry.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


# -- migrations -------------------------------------------------------------------------

def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config built in code (no alembic.ini): the packaged migrations, and the
    connection to run them on."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this Gefion knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: sa.Connection) -> str | None:
    """The schema revision recorded in the database (None: not migrated yet)."""
    return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: sa.Engine) -> str:
    """Bring the database to the head revision, in one transaction; return the revision.

    Idempotent, and safe when several processes open the same database at once: SQLite
    queues them on the write lock, PostgreSQL on an advisory lock.
    """
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        try:
            command.upgrade(alembic_config(conn), "head")
        except CommandError as e:
            raise SchemaError(f"cannot migrate the database to this Gefion's schema "
                              f"({head_revision()}): {e}") from None
        revision = current_revision(conn)
    assert revision is not None
    return revision
