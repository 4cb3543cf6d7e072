"""Alembic makes the schema; the model in schema.py matches it on both backends."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gefion.store import NewJob, SchemaError, Store
from gefion.store.engine import alembic_config, head_revision
from gefion.store.schema import metadata
from tests.store.builders import new_job


def test_open_creates_every_table_and_records_the_head(store: Store) -> None:
    names = set(sa.inspect(store._engine).get_table_names())
    assert {"events", "jobs", "nodes", "log_head", "alembic_version", "users", "projects",
            "memberships", "tokens", "qos", "grants", "reservations"} <= names
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert store.schema_revision() == head == head_revision() == "0004"


def test_the_migrated_schema_matches_the_model(store: Store) -> None:
    with store._engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_specs_and_payloads_are_compressed_with_lz4_on_postgresql(
        store_url: str, backend: str) -> None:
    """The kilobytes of every submission's spec, stored in its event and its job row, are
    compressed by LZ4 on PostgreSQL (cheaper for the backend than pglz), and go back to
    pglz on downgrade. SQLite compresses nothing, and the revision leaves it alone."""
    query = sa.text("SELECT attrelid::regclass::text, attname, attcompression "
                    "FROM pg_attribute WHERE attrelid IN ('jobs'::regclass, "
                    "'events'::regclass) AND attname IN ('spec', 'payload') ORDER BY 1")
    big = NewJob(name="env", user="ana", project="nlp", spec={
        "gpus": 1, "time_limit_s": 600, "project": "nlp",
        "env": {f"VAR_{i}": f"value {i} " * 8 for i in range(100)}})
    with Store.open(store_url) as store, store._engine.connect() as conn:
        store.submit([big], ts=1.0)
        if backend != "postgresql":
            assert store.schema_revision() == "0004"
            return
        assert [tuple(r) for r in conn.execute(query)] == [
            ("events", "payload", "l"), ("jobs", "spec", "l")]
        assert conn.execute(sa.text(
            "SELECT pg_column_compression(spec) FROM jobs")).scalar_one() == "lz4"
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
        assert [r[2] for r in conn.execute(query)] == ["p", "p"]
        conn.rollback()


def test_opening_twice_is_idempotent_and_keeps_the_data(store_url: str) -> None:
    with Store.open(store_url) as first:
        ids = first.submit([new_job()], ts=1.0)
    with Store.open(store_url) as second:
        assert second.schema_revision() == head_revision()
        assert second.get_job(ids[0]) is not None
        assert second.submit([new_job()], ts=2.0) == [ids[0] + 1]


def test_concurrent_first_opens_migrate_once(store_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[Store] = []

    def open_it() -> None:
        try:
            stores.append(Store.open(store_url))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    assert len(stores) == 4


def test_a_new_sqlite_database_locked_by_another_process_is_waited_for(tmp_path: Path) -> None:
    """Turning a new database to WAL needs its exclusive lock, and SQLite refuses that at
    once, without its busy handler, while another connection writes: the store waits for
    the lock, as its busy timeout promises, instead of failing to open."""
    path = tmp_path / "g.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE other (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO other VALUES (1)")
    release = threading.Timer(0.3, other.commit)
    release.start()
    with Store.open(f"sqlite:///{path}") as store:  # opened while the other one writes
        assert store.schema_revision() == head_revision()
    release.join()
    other.close()
    with sqlite3.connect(path) as after:
        assert after.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_database_from_an_unknown_revision_is_refused(store_url: str) -> None:
    with Store.open(store_url) as store, store._engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaError, match="9999"):
        Store.open(store_url)


@pytest.mark.parametrize("url", ["postgresql+psycopg://u@h/db", "sqlite:///g.db"])
def test_offline_mode_writes_the_sql_for_a_dba(url: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE events" in sql
    assert "CREATE TABLE jobs" in sql
    assert "INSERT INTO log_head" in sql
