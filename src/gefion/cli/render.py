"""Rich tables for a :class:`~gefion.core.decisions.CycleResult` (``gefion plan``).

Every cell that can hold user text (job ids, node names, details) goes in as
:class:`rich.text.Text`, never as a markup string: Rich would read ``dgx[a-b]`` as a tag.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gefion.core.decisions import CycleResult
from gefion.formats.hostlist import compress


def format_duration(seconds: float) -> str:
    """A short human duration: ``45s``, ``12m``, ``3h05m``, ``2d04h``."""
    s = round(abs(seconds))
    sign = "-" if seconds < 0 and s else ""
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m"
    if s < 86_400:
        return f"{sign}{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{sign}{s // 86_400}d{s % 86_400 // 3600:02d}h"


def format_planned(planned_start_s: float | None, now: float) -> str:
    """Absolute seconds (the JSON value) and how far from now: ``7200 (in 1h00m)``."""
    if planned_start_s is None:
        return "-"
    return f"{planned_start_s:g} (in {format_duration(planned_start_s - now)})"


def started_table(result: CycleResult) -> Table:
    table = Table(title=f"Started ({len(result.starts)})", title_justify="left")
    table.add_column("id", overflow="fold")
    table.add_column("nodes", overflow="fold")
    table.add_column("GPUs", justify="right")
    table.add_column("backfilled")
    for start in result.starts:
        names = [name for name, _ in start.placement.nodes]
        table.add_row(Text(start.job_id), Text(compress(names)), str(start.placement.gpus),
                      "yes" if start.backfilled else "")
    return table


def preempted_table(result: CycleResult) -> Table:
    table = Table(title=f"Preempted ({len(result.preemptions)})", title_justify="left")
    table.add_column("id", overflow="fold")
    table.add_column("grace", justify="right")
    table.add_column("for", overflow="fold")
    table.add_column("requeue")
    for p in result.preemptions:
        table.add_row(Text(p.job_id), format_duration(p.grace_s), Text(p.for_job),
                      "yes" if p.requeue else "no")
    return table


def pending_table(result: CycleResult) -> Table:
    table = Table(title=f"Pending ({len(result.pending)}, in priority order)",
                  title_justify="left")
    table.add_column("id", overflow="fold")
    table.add_column("reason")
    table.add_column("planned start")
    table.add_column("detail", overflow="fold")
    table.add_column("priority", justify="right")
    for v in result.pending:
        factors = result.factors.get(v.job_id)
        table.add_row(Text(v.job_id), v.reason.value, format_planned(v.planned_start_s, result.now),
                      Text(v.detail), f"{factors.priority:.4f}" if factors else "-")
    return table


def print_plan(result: CycleResult, console: Console | None = None) -> None:
    """Print the three tables (empty ones left out) and a one-line summary."""
    console = console or Console()
    console.print(Text(f"cycle at now={result.now:g} s, policy {result.policy}: "
                       f"{len(result.starts)} started, {len(result.preemptions)} preempted, "
                       f"{len(result.pending)} pending"))
    for rows, table in ((result.starts, started_table), (result.preemptions, preempted_table),
                        (result.pending, pending_table)):
        if rows:
            console.print(table(result))
