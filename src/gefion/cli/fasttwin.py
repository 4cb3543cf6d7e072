"""``gefion twin run`` without Typer, for command lines it can read on its own.

A twin run of a week of jobs takes a fraction of a second, so start-up is most of what a
user waits for, and the issue's measure counts it: Typer and the CLI's other commands cost
more than the whole simulation. The entry point (:mod:`gefion.cli.fastqueue`) hands
``gefion twin run ...`` here first. :func:`parse` reads the options of the Typer command
(:func:`gefion.cli.twin.run`) — the same flags, ``--flag value`` or ``--flag=value``, the
same types and defaults (a test holds the two to each other) — and
:func:`gefion.cli.twinrun.run_command` does the rest, exactly as under Typer. Anything this
parser is not sure of — ``--help``, an unknown or repeated option, a missing value, a value
of the wrong type, no ``--trace`` — returns None, and Typer takes the command line and
answers it as always (with its usage message for bad options).

Errors are reported as the central handler reports them (:mod:`gefion.cli.errors`):
``error: ...`` on stderr, exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gefion.cli.failures import EXIT_INPUT_ERROR, user_error_message

#: ``flag -> (parameter of run_command, type)``; ``list`` options may repeat.
OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "--trace": ("trace", str),
    "--cluster": ("cluster", str),
    "--policy": ("policy", str),
    "--load": ("load", float),
    "--seed": ("seed", int),
    "--from": ("from_", str),
    "--to": ("to", str),
    "--gpus": ("gpus", str),
    "--traces": ("traces", Path),
    "--depth": ("depth", str),
    "--json": ("json_out", Path),
    "--report": ("report", Path),
    "--tenancy": ("tenancy", Path),
    "--sensitive": ("sensitive", str),
    "--set": ("settings", list),
}
#: ``flag -> parameter`` of the switches (True when given).
FLAGS: dict[str, str] = {"--check": "check", "--quiet": "quiet", "-q": "quiet"}


def parse(args: list[str]) -> dict[str, Any] | None:
    """Keyword arguments of ``run_command`` for the words after ``twin run``, or None for
    anything to leave to Typer."""
    kwargs: dict[str, Any] = {}
    i = 0
    while i < len(args):
        word = args[i]
        flag, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if flag in FLAGS and not eq:
            name = FLAGS[flag]
            if name in kwargs:
                return None
            kwargs[name] = True
            i += 1
            continue
        if flag not in OPTIONS:
            return None  # --help, a typo, a positional word: Typer says what is wrong
        if not eq:
            if i + 1 >= len(args):
                return None
            i += 1
            value = args[i]
        name, kind = OPTIONS[flag]
        if kind is list:
            kwargs.setdefault(name, []).append(value)
        elif name in kwargs:
            return None
        else:
            try:
                kwargs[name] = kind(value)
            except ValueError:
                return None
        i += 1
    return kwargs if "trace" in kwargs else None


def main(args: list[str]) -> int | None:
    """Run ``gefion twin run`` with ``args`` (the words after ``twin run``); the exit status,
    or None if Typer is to take the command line."""
    kwargs = parse(args)
    if kwargs is None:
        return None
    from gefion.cli.twinrun import run_command

    try:
        run_command(**kwargs)
    except KeyboardInterrupt:
        sys.stderr.write("Aborted!\n")  # as click says it
        return 1
    except Exception as exc:
        message = user_error_message(exc)
        if message is None:
            raise
        sys.stderr.write(f"error: {message}\n")
        return EXIT_INPUT_ERROR
    return 0
