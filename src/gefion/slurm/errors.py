"""Errors and warnings of sbatch parsing, and where they point.

::

    gefion.core.errors.InputError
    └── SbatchError     a script or flag refused: ``source`` (the script path or
        │               ``<command line>``), ``line`` (1-based, None for flags), ``field``
        │               (the option's long form, ``--time``) and a message saying why
        └── BadValue    one value that cannot be parsed, raised by the value parsers
                        (``parse_time_limit``, ``ArraySpec.parse``...) before they know
                        where the value came from; the option parser re-raises it located

A :class:`Diagnostic` is a warning: the directive was accepted, and this is what the user
should know about it (usually that it has no effect here). Warnings are values on the
:class:`~gefion.slurm.submission.Submission`, never printed or logged by this package.
"""

from __future__ import annotations

from dataclasses import dataclass

from gefion.core.errors import InputError

#: The ``source`` of an option given as a command-line flag rather than a directive.
COMMAND_LINE = "<command line>"


class SbatchError(InputError):
    """A batch script or sbatch option that is refused, located by source, line and option."""


class BadValue(SbatchError):
    """A value that cannot be parsed; ``message`` says what was expected."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an option was given: ``source`` and 1-based ``line`` (None on the command line),
    ``option`` its canonical long form (``--time``) and ``value`` the text as written."""

    source: str
    line: int | None
    option: str
    value: str | None = None

    @property
    def written(self) -> str:
        """The option as the user wrote it, for messages: ``--mem=3T``."""
        return self.option if self.value is None else f"{self.option}={self.value}"

    def error(self, message: str) -> SbatchError:
        """A refusal of this option, located here."""
        return SbatchError(message, field=self.option, source=self.source, line=self.line)

    def refusal(self, reason: str) -> SbatchError:
        """``cannot be honoured: <option=value> <reason>``: a valid option the site can't do."""
        return self.error(f"cannot be honoured: {self.written} {reason}")

    def warning(self, message: str) -> Diagnostic:
        """A warning about this option, located here."""
        return Diagnostic(self.source, self.line, self.option, message)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A warning about an accepted directive; ``line`` is None for command-line flags."""

    source: str
    line: int | None
    option: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.option}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "line": self.line, "option": self.option,
                "message": self.message}
