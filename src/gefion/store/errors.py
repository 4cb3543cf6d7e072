"""Errors the store raises beyond the core's tree (:mod:`gefion.core.errors`).

::

    GefionError
    ├── InputError
    │   └── NotFoundError   an event or lookup names a job or node the store does not have
    └── SchemaError         the database's schema is not one this Gefion can migrate

An illegal transition is the core's :class:`~gefion.core.errors.StateError`; a malformed event
or submission is an :class:`~gefion.core.errors.InputError` naming the field. Both are raised
before anything is written.
"""

from __future__ import annotations

from gefion.core.errors import GefionError, InputError


class NotFoundError(InputError):
    """A job id or node name that the store does not know (an API answers 404)."""


class SchemaError(GefionError):
    """The database cannot be opened: its schema revision is unknown (written by a newer
    Gefion?) or the migration failed."""
