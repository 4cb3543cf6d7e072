"""Backends: URLs, and SQLite configured as the design says (WAL, synchronous, FKs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from gefion.core.errors import InputError
from gefion.store import Store
from gefion.store.engine import normalize_url


@pytest.mark.parametrize(("url", "driver"), [
    ("postgresql://u:p@h/db", "postgresql+psycopg"),
    ("postgres://u:p@h/db", "postgresql+psycopg"),
    ("postgresql+psycopg://u:p@h/db", "postgresql+psycopg"),
    ("sqlite:///x.db", "sqlite+pysqlite"),
    ("sqlite:////abs/x.db", "sqlite+pysqlite"),
])
def test_supported_urls_map_to_psycopg3_and_pysqlite(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


@pytest.mark.parametrize("url", [
    "sqlite://", "sqlite:///:memory:", "mysql://u:p@h/db", "postgresql+psycopg2://u@h/db",
    "not a url",
])
def test_unsupported_urls_are_input_errors_naming_the_url(url: str) -> None:
    with pytest.raises(InputError) as err:
        normalize_url(url)
    assert err.value.field == "url"


def _pragmas(store: Store) -> dict[str, object]:
    with store._engine.connect() as conn:
        return {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}


def test_sqlite_runs_wal_with_synchronous_normal_by_default(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'sub' / 'g.db'}", busy_timeout_s=7) as store:
        assert _pragmas(store) == {"journal_mode": "wal", "synchronous": 1,  # NORMAL
                                   "foreign_keys": 1, "busy_timeout": 7000}


def test_sqlite_durable_means_synchronous_full(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'g.db'}", durable=True) as store:
        assert _pragmas(store)["synchronous"] == 2  # FULL


def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    store.close()
    store.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        store.get_job(1)


def test_postgresql_store_talks_psycopg3(store: Store, backend: str) -> None:
    assert store.backend == backend
    if backend == "postgresql":
        assert store._engine.dialect.driver == "psycopg"
        with store._engine.connect() as conn:
            assert str(conn.execute(sa.text("SELECT current_schema()")).scalar()).startswith(
                "t_")
