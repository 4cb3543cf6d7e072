"""The one place where the ``gefion`` command turns errors into messages and exit codes.

Every command, including those of sub-apps added later (``gefion twin ...``), runs inside
:class:`GefionGroup.invoke`, so none of them needs its own ``try``:

- a :class:`~gefion.core.errors.GefionError` (bad input, bad policy, illegal state) prints
  ``error: <message>`` on stderr — the message already names file, line and field — and
  exits with :data:`EXIT_INPUT_ERROR`;
- an ``OSError`` from reading a file the user named (missing, unreadable, a directory) is
  reported the same way;
- anything else is a bug in Gefion and keeps its traceback, so it gets reported and fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from gefion.core.errors import GefionError

#: Bad input of any kind; the same code click uses for a bad option, so scripts need to
#: tell apart only "bad input" (2) from "Gefion failed" (1).
EXIT_INPUT_ERROR = 2


def fail(message: str, code: int = EXIT_INPUT_ERROR) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    # typer.echo, not a Rich console: the message may hold brackets (``dgx[001-0x2]``) that
    # Rich would take for markup and swallow.
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def describe_os_error(exc: OSError) -> str:
    """``jobs.yaml: No such file or directory`` rather than ``[Errno 2] ...``."""
    reason = exc.strerror or exc.__class__.__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors the user caused into a message and :data:`EXIT_INPUT_ERROR`."""
    try:
        yield
    except GefionError as exc:
        fail(str(exc))
    except BrokenPipeError:
        raise  # the reader went away (`gefion plan x --json | head`): not the user's input
    except OSError as exc:
        fail(describe_os_error(exc))


class GefionGroup(TyperGroup):
    """The top-level command group; wraps every subcommand in :func:`user_errors`."""

    def invoke(self, ctx: Any) -> Any:
        with user_errors():
            return super().invoke(ctx)
