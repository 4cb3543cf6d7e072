"""Gefion's exception tree. Every error a user can cause is one of these.

::

    GefionError                 base; ``str()`` is a one-line message fit for a user
    ├── InputError              bad input: names the source (file), line and field
    │   ├── SpecError           a job specification that cannot be valid
    │   └── TopologyError       a cluster description that cannot be valid
    ├── StateError              an illegal job state transition
    ├── PolicyError             an unknown policy name or bad policy parameter
    └── AccessError             the caller may not do this (its role or projects forbid it)

Bodies (CLI, API) catch ``GefionError`` and turn it into a message and a non-zero exit or a
4xx problem body; they never show a traceback for one.
"""

from __future__ import annotations


class GefionError(Exception):
    """Base class of every error Gefion raises on purpose."""


class InputError(GefionError):
    """Bad input. ``source`` is a file name (or ``"<request>"``), ``line`` 1-based."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.field = field
        self.source = source
        self.line = line
        super().__init__(self.__str__())

    def located(self, *, source: str | None = None, line: int | None = None) -> InputError:
        """A copy of this error with a source and line filled in where they were missing."""
        return type(self)(
            self.message,
            field=self.field,
            source=self.source or source,
            line=self.line if self.line is not None else line,
        )

    def prefixed(self, prefix: str) -> InputError:
        """A copy with ``prefix`` prepended to the field path (``pending[3]`` + ``gpus``)."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return type(self)(self.message, field=field, source=self.source, line=self.line)

    def __str__(self) -> str:
        where = ""
        if self.source is not None:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        what = f"field '{self.field}': " if self.field else ""
        return f"{where}{what}{self.message}"


class SpecError(InputError):
    """A job specification that cannot be valid (negative GPUs, unknown dependency kind...)."""


class TopologyError(InputError):
    """A cluster description that cannot be valid (bad node range, duplicate node...)."""


class StateError(GefionError):
    """An illegal transition of a job's state (e.g. COMPLETED -> RUNNING)."""


class PolicyError(GefionError):
    """An unknown policy name or an invalid policy parameter."""


class AccessError(GefionError):
    """The caller may not do what it asked (an API answers 403). ``field`` names the input
    that asked for it, if one did (``project`` for ``-A``); ``target`` what was refused
    (``job 12``, ``node dgx001``), for the audit trail."""

    def __init__(self, message: str, *, field: str | None = None,
                 target: str | None = None) -> None:
        self.message = message
        self.field = field
        self.target = target
        super().__init__(f"field '{field}': {message}" if field else message)
