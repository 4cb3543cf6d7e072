"""The body of ``gefion twin run``, and what ``compare``, ``sweep`` and ``sensitive-cost``
share with it, without Typer.

:mod:`gefion.cli.twin` declares the commands and their options for Typer and calls in here;
:mod:`gefion.cli.fasttwin` calls :func:`run_command` directly for a ``gefion twin run`` whose
options it can read on its own, so that the command pays neither for Typer nor for the CLI's
other commands (the Philly week takes a fraction of a second: start-up counts). Everything
heavy (numpy, the scheduler, Rich tables, matplotlib) is imported inside the functions.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from gefion.twin.run import RunOptions, RunOutcome


def options_of(trace: str, cluster: str, policy: str, load: float, seed: int,
               from_: str | None, to: str | None, gpus: str | None, traces: Path | None,
               depth: str | None, check: bool = False, tenancy: Path | None = None,
               sensitive: str | None = None, settings: list[str] | None = None) -> RunOptions:
    """The command's options as the twin's :class:`~gefion.twin.run.RunOptions`."""
    from gefion.core.policies import parse_depth
    from gefion.twin.run import RunOptions, parse_gpus, parse_list

    return RunOptions(trace=trace, cluster=cluster, policy=policy, load=load, seed=seed,
                      window_from=from_, window_to=to, gpus_in=parse_gpus(gpus),
                      traces=None if traces is None else str(traces), depth=parse_depth(depth),
                      check=check, tenancy=None if tenancy is None else str(tenancy),
                      sensitive=() if sensitive is None
                      else tuple(parse_list(sensitive, "sensitive")),
                      settings=tuple(settings or ()))


def check_setup(options: RunOptions) -> None:
    """Read the cluster and the tenancy file once, here: bad input fails before any run
    (and not once per worker)."""
    from gefion.twin.run import make_cluster, make_policy, make_tenancy

    make_policy(options)  # a bad --set fails here, with the parameter named
    make_tenancy(options, make_cluster(options))


def tenancy_note(summary: dict[str, Any], console: Console | None) -> None:
    """Say so when the tenancy names projects the trace does not have (a typo there
    would silently change nothing)."""
    missing = (summary.get("tenancy") or {}).get("projects_not_in_trace") or []
    if missing and console:
        console.print(f"note: the tenancy names projects with no job in the trace: "
                      f"{', '.join(missing)}", markup=False, highlight=False)


def check_outputs(json_out: Path | None, report: Path | None) -> None:
    """Fail before a long run, not after it, when its results could not be written."""
    from gefion.core.errors import InputError

    if json_out is not None and str(json_out) != "-" and not json_out.parent.is_dir():
        raise InputError(f"no such directory: {str(json_out.parent)!r}", field="json")
    if report is not None and report.exists() and not report.is_dir():
        raise InputError(f"{str(report)!r} exists and is not a directory", field="report")


def progress_bar(quiet: bool) -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    TimeElapsedColumn(), console=console, transient=True,
                    disable=quiet or not console.is_terminal)


def write_json(document: Any, target: Path, console: Console | None) -> None:
    import json

    text = json.dumps(document, indent=2, sort_keys=True)
    if str(target) == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    target.write_text(text + "\n", encoding="utf-8")
    if console:
        console.print(f"wrote {target}", markup=False, highlight=False)


def notes_console(quiet: bool) -> Console | None:
    from rich.console import Console

    return None if quiet else Console(stderr=True)


# -- gefion twin run ---------------------------------------------------------------------------


def run_command(*, trace: str, cluster: str = "gefion", policy: str = "gefion",
                load: float = 1.0, seed: int = 0, from_: str | None = None,
                to: str | None = None, gpus: str | None = None, traces: Path | None = None,
                depth: str | None = None, json_out: Path | None = None,
                report: Path | None = None, check: bool = False,
                tenancy: Path | None = None, sensitive: str | None = None,
                settings: list[str] | None = None, quiet: bool = False) -> None:
    """``gefion twin run``: replay a trace through one policy and summarise it. The
    defaults are the command's (a test holds the Typer declaration to them)."""
    options = options_of(trace, cluster, policy, load, seed, from_, to, gpus, traces, depth,
                       check, tenancy, sensitive, settings)
    check_outputs(json_out, report)
    check_setup(options)
    from gefion.twin.run import run_twin

    with progress_bar(quiet) as bar:
        task = bar.add_task(f"checking {options.trace}", total=None)
        words = {"trace": "loading", "simulate": "simulating", "summarize": "summarising"}
        last = [-1.0]

        def progress(done: float, total: float) -> None:
            # The engine may call this per event: redraw only every 0.1% of the way.
            if done - last[0] >= total / 1000 or done >= total:
                last[0] = done
                bar.update(task, completed=done, total=total)

        def on_stage(name: str) -> None:
            bar.update(task, description=f"{words[name]} {options.trace} · {options.policy}")

        outcome = run_twin(options, progress=progress, on_stage=on_stage)
    notes = notes_console(quiet)
    tenancy_note(outcome.summary, notes)
    if json_out is not None:
        write_json(outcome.summary, json_out, notes)
    if report is not None:
        from gefion.twin.report import write_report

        paths = write_report(outcome.result, outcome.summary, report)
        if notes:
            notes.print(f"wrote {paths[0]} and {len(paths) - 1} plots", markup=False,
                        highlight=False)
    if json_out is None or str(json_out) != "-":
        print_run(outcome)


def print_run(outcome: RunOutcome) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from gefion.twin.report import fmt_duration, fmt_number, summary_rows

    r = outcome.result
    table = Table(title=Text(f"{r.trace} on {r.cluster} · policy {r.policy} · seed {r.seed} · "
                             f"load {r.load:g}"), title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric, value in summary_rows(outcome.summary):
        table.add_row(metric, Text(value))
    console = Console()
    console.print(table)
    by_size = outcome.summary.get("by_size") or {}
    if by_size:
        sizes = Table(title="by job size", title_justify="left")
        for column in ("size", "jobs", "avg JCT", "p99 JCT", "avg wait", "p99 wait"):
            sizes.add_column(column, justify="left" if column == "size" else "right")
        for name, m in by_size.items():
            if not m.get("jobs"):
                continue
            sizes.add_row(Text(str(name)), fmt_number(m.get("jobs")),
                          fmt_duration(m.get("avg_jct_s")), fmt_duration(m.get("p99_jct_s")),
                          fmt_duration(m.get("avg_wait_s")), fmt_duration(m.get("p99_wait_s")))
        console.print(sizes)
