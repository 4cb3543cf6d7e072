"""Which errors are the user's, and how they read: shared by the Typer app's central handler
(:mod:`gefion.cli.errors`) and by the entry points that answer without Typer
(:mod:`gefion.cli.fasttwin`). No Typer here: importing this costs nothing."""

from __future__ import annotations

from gefion.core.errors import GefionError

#: Bad input of any kind; the same code click uses for a bad option, so scripts need to
#: tell apart only "bad input" (2) from "Gefion failed" (1).
EXIT_INPUT_ERROR = 2


def describe_os_error(exc: OSError) -> str:
    """``jobs.yaml: No such file or directory`` rather than ``[Errno 2] ...``."""
    reason = exc.strerror or exc.__class__.__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


def user_error_message(exc: BaseException) -> str | None:
    """The message for an error the user caused — bad input of any kind (the message names
    file, line and field), or a file they named that cannot be read — else None (a bug in
    Gefion, which keeps its traceback; or a reader that went away, ``| head``)."""
    if isinstance(exc, GefionError):
        return str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        return describe_os_error(exc)
    return None
