"""Alembic's entry point: runs the revisions on the connection the store hands over.

:func:`gefion.store.engine.migrate` passes an open connection (inside its transaction) in
``config.attributes["connection"]``. Without one, a ``sqlalchemy.url`` main option is used,
and offline mode (``--sql``) writes the SQL for a DBA to run.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from gefion.store.schema import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"),
                          target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
