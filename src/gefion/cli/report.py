"""``gefion report``: accounting reports from a running server.

``gefion report usage`` is ``GET /v1/reports/usage`` (docs/telemetry.md): GPU-hours
(charged and raw), jobs and energy per project, user, funder or QOS over a window, as a
table, CSV or JSON. Everyone sees their own projects' usage; operators and admins every
project's. Start-up stays light, as for the job commands.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gefion.cli.jobs import ServerOption, TokenOption, _client, _print, _table, parse_when
from gefion.core.errors import InputError

report_app = typer.Typer(help="Accounting reports: usage per project, user, funder or QOS.",
                         no_args_is_help=True)

FORMATS = ("table", "csv", "json")
BY = ("project", "user", "funder", "qos")
#: The numeric fields of a row, in the order of the table and the CSV.
FIELDS = ("jobs", "gpu_hours", "raw_gpu_hours", "energy_kwh", "unmeasured_gpu_hours")


def month_start(now: float) -> float:
    """00:00 local time on the first day of ``now``'s month."""
    import time

    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, -1))


@report_app.command("usage")
def usage(
    by: Annotated[str, typer.Option("--by", metavar="|".join(BY),
                                    help="Group by project, user, funder or QOS.")
                  ] = "project",
    start: Annotated[str | None, typer.Option(
        "--from", metavar="TIME",
        help="Window start (2025-05-01, 2025-05-01T13:00, now-7days); default: 00:00 on "
             "the 1st of this month.")] = None,
    end: Annotated[str | None, typer.Option(
        "--to", metavar="TIME", help="Window end; default: now.")] = None,
    project: Annotated[list[str] | None, typer.Option(
        "-A", "--project", "--account", metavar="PROJECT",
        help="Only these projects (repeatable).")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="|".join(FORMATS),
                                     help="table, csv or json.")] = "table",
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """GPU-hours (charged: × QOS usage factor; raw), jobs and energy (kWh) per project,
    user, funder or QOS. Jobs running across the window's edges count pro rata."""
    import time

    if by not in BY:
        raise InputError(f"must be one of {', '.join(BY)}, got {by!r}", field="--by")
    if fmt not in FORMATS:
        raise InputError(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", field="--format")
    now = time.time()
    from_ts = parse_when(start, field="--from", now=now) if start else month_start(now)
    to_ts = parse_when(end, field="--to", now=now) if end else now
    with _client(server, token) as client:
        report = client.usage_report(by=by, from_ts=from_ts, to_ts=to_ts, projects=project)
    if fmt == "json":
        import json

        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    elif fmt == "csv":
        typer.echo(to_csv(report), nl=False)
    else:
        _print_table(report)


def to_csv(report: dict[str, Any]) -> str:
    """The rows (no total) as CSV with a header: ``project,jobs,gpu_hours,...``."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([report["by"], *FIELDS])
    for row in report["rows"]:
        writer.writerow([row[report["by"]], *(row[f] for f in FIELDS)])
    return out.getvalue()


def _print_table(report: dict[str, Any]) -> None:
    from rich.text import Text

    from gefion.cli.jobs import when

    headers = ("JOBS", "GPU-HOURS", "RAW GPU-HOURS", "ENERGY (kWh)", "UNMEASURED GPU-H")
    table = _table(report["by"].upper(), *headers, right=headers)
    for row in [*report["rows"], {**report["total"], report["by"]: "TOTAL"}]:
        table.add_row(Text(str(row[report["by"]])), str(row["jobs"]),
                      *(f"{row[f]:.{3 if f == 'energy_kwh' else 2}f}" for f in FIELDS[1:]))
    _print(f"Usage by {report['by']}, {when(report['from_ts'])} to {when(report['to_ts'])}",
           table)
