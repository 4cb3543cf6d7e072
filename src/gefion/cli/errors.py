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

from gefion.cli.failures import EXIT_INPUT_ERROR, user_error_message

__all__ = ["EXIT_INPUT_ERROR", "GefionGroup", "fail", "user_errors"]


def fail(message: str, code: int = EXIT_INPUT_ERROR) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    # typer.echo, not a Rich console: the message may hold brackets (``dgx[001-0x2]``) that
    # Rich would take for markup and swallow.
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors the user caused into a message and :data:`EXIT_INPUT_ERROR`."""
    try:
        yield
    except Exception as exc:
        message = user_error_message(exc)
        if message is None:
            raise  # a bug, or the reader went away (`gefion plan x --json | head`)
        fail(message)


class GefionGroup(TyperGroup):
    """The top-level command group; wraps every subcommand in :func:`user_errors`."""

    def invoke(self, ctx: Any) -> Any:
        with user_errors():
            return super().invoke(ctx)
