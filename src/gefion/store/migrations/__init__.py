"""Alembic migrations of the store's schema, run by :func:`gefion.store.engine.migrate`.

Revisions live in ``versions/`` as plain Python modules (packaged like any other). A new
revision is a new file there whose ``down_revision`` is the previous head; write it by hand
or with ``alembic -x ... revision`` using ``script.py.mako``, and update
:mod:`gefion.store.schema` to match (a test compares the two).
"""
