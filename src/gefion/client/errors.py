"""The client's one exception, :class:`ApiError`, and its no-answer case.

::

    GefionError                 (gefion.core.errors)
    └── ApiError                the server refused or failed: ``status`` and the RFC 9457
        │                       ``problem`` body; ``str()`` is its detail, located
        └── ServerUnreachable   no answer at all (``status`` 0): nothing listens there

Both are ``GefionError``\\ s, so the ``gefion`` command reports them as ``error: ...`` and
exits 2 without a traceback, like any other error the user can cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gefion.core.errors import GefionError


class ApiError(GefionError):
    """An error answer: ``status`` (HTTP), ``problem`` (the body), and from it ``detail``,
    ``field``, ``source`` and ``line`` (None where the error has none)."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        self.field = _text(problem.get("field"))
        self.source = _text(problem.get("source"))
        line = problem.get("line")
        self.line = line if isinstance(line, int) else None
        super().__init__(str(self))

    def __str__(self) -> str:
        """As :class:`~gefion.core.errors.InputError` words it: ``job.sh:3: field
        '--time': ...``."""
        where = ""
        if self.source is not None:
            where = self.source + (f":{self.line}" if self.line is not None else "") + ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        what = f"field '{self.field}': " if self.field else ""
        return f"{where}{what}{self.detail}"


class ServerUnreachable(ApiError):
    """Nothing answered at ``url``: the server is not running, or not there."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(0, {
            "title": "Server unreachable",
            "detail": unreachable_message(url, reason)})


def unreachable_message(url: str, reason: str) -> str:
    """The message of an unreachable server (the fast ``gefion queue`` words it alike)."""
    return (f"cannot reach the Gefion server at {url} ({reason}); is it running? "
            f"Start it with 'gefion up', or point --server / GEFION_SERVER at it")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
