"""Store fixtures: every store test runs on SQLite (a file in tmp_path) and on PostgreSQL.

PostgreSQL comes from ``GEFION_TEST_PG`` (CI's .ci/run starts the server and exports it).
Each test gets a schema of its own (``t_<random>``, selected with ``search_path`` in the
URL and dropped afterwards), so parallel runs against one database do not collide. An
unreachable server fails the tests, never skips them: a gate that quietly tests one
backend proves nothing about the other.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gefion.store import Store
from gefion.store.schema import events, jobs, log_head, nodes
from gefion.store.tenancy_schema import TABLES as TENANCY_TABLES

PG_DEFAULT = "postgresql+psycopg://gefion:gefion@127.0.0.1:5432/gefion_test"
PG_URL = os.environ.get("GEFION_TEST_PG", PG_DEFAULT)
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    """An engine on the test database; fails every PostgreSQL test if it is unreachable."""
    engine = sa.create_engine(PG_URL, poolclass=sa.NullPool,
                              connect_args={"connect_timeout": 5})
    problem = None
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as e:
        problem = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
    if problem is not None:
        engine.dispose()
        pytest.fail(
            f"PostgreSQL is unreachable at {sa.make_url(PG_URL)!r}: {problem}\n"
            "The store tests need it. Start it with `pg_ctlcluster 15 main start` (as root; "
            ".ci/run installs it and creates the role and database), or point "
            "GEFION_TEST_PG at a server.", pytrace=False)
    yield engine
    engine.dispose()


def _pg_schema_url(admin: sa.Engine, schema: str) -> str:
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _drop_schema(admin: sa.Engine, schema: str) -> None:
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def url_factory(request: pytest.FixtureRequest,
                tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``make(backend)`` → the URL of a fresh, empty database of that backend."""
    schemas: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'gefion-{uuid.uuid4().hex[:8]}.db'}"
        admin: sa.Engine = request.getfixturevalue("pg_admin")
        schema = f"t_{uuid.uuid4().hex[:16]}"
        schemas.append(schema)
        return _pg_schema_url(admin, schema)

    yield make
    if schemas:
        admin = request.getfixturevalue("pg_admin")
        for schema in schemas:
            _drop_schema(admin, schema)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, url_factory: Callable[[str], str]) -> str:
    return url_factory(backend)


@pytest.fixture(scope="session")
def pg_session_store(pg_admin: sa.Engine) -> Iterator[Store]:
    """One migrated PostgreSQL schema for this test process, emptied before each test:
    migrating a fresh schema costs ~0.1 s, emptying one a few ms."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    store = Store.open(_pg_schema_url(pg_admin, schema))
    yield store
    store.close()
    _drop_schema(pg_admin, schema)


def _empty(store: Store) -> None:
    with store._engine.begin() as conn:
        for table in (events, jobs, nodes, *TENANCY_TABLES.values()):
            conn.execute(sa.delete(table))
        conn.execute(sa.update(log_head).values(last_seq=0, last_job_id=0))
    store._recent.clear()  # the events it kept in memory are gone too


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file to copy: copying beats migrating (~60 ms) per test."""
    path = tmp_path_factory.mktemp("store-template") / "gefion.db"
    Store.open(f"sqlite:///{path}").close()  # the last close checkpoints the WAL away
    return path


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Store]:
    """An empty store: a copy of the SQLite template, or the emptied PostgreSQL session
    schema. (Tests of opening and migrating use ``store_url``: a database never opened.)"""
    if backend == "postgresql":
        shared: Store = request.getfixturevalue("pg_session_store")
        _empty(shared)
        yield shared
        return
    path = tmp_path / "gefion.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    s = Store.open(f"sqlite:///{path}")
    yield s
    s.close()
