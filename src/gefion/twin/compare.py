"""Policies side by side: a grid of twin runs (policy × load) in parallel processes.

::

    runs = run_grid(make_grid(RunOptions(trace="itp-elasticflow"),
                              ["fifo-backfill", "gefion"], [1.0, 1.5]))
    write_compare_report(runs, "out/")   # out/compare.md, out/compare.png

Each grid cell is an independent :func:`~gefion.twin.run.run_twin` in a worker process:
the same options give the same summary as a run alone, so parallelism changes only the
wall time. Workers come from a ``forkserver`` context (``spawn`` where there is none):
never a ``fork`` of a parent that may hold a progress-bar thread.

The table, plot and report helpers take an optional ``traces`` (one label per run): then the
table gains a ``trace`` column and the plot one column of panels per trace. That is how
:mod:`gefion.twin.sweep` (the same grid over several traces, on Ray) reports.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gefion.core.errors import InputError
from gefion.twin.run import LARGE_JOB_GPUS, RunOptions, parse_list, run_twin

if TYPE_CHECKING:
    from gefion.twin.result import SimResult


@dataclass(frozen=True, slots=True)
class CompareRun:
    """One cell of the grid: its options, the engine's summary, and the p99 wait of the
    jobs of at least ``LARGE_JOB_GPUS`` GPUs (``None`` when no such job started)."""

    options: RunOptions
    summary: dict[str, Any]
    large_jobs: int
    large_p99_wait_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.options.policy, "load": self.options.load,
                "summary": self.summary,
                "large_jobs": {"min_gpus": LARGE_JOB_GPUS, "jobs": self.large_jobs,
                               "p99_wait_s": self.large_p99_wait_s}}


def parse_loads(text: str) -> list[float]:
    loads = []
    for item in parse_list(text, "loads"):
        try:
            value = float(item)
        except ValueError:
            raise InputError(f"not a number: {item!r}", field="loads") from None
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"each load must be a number > 0, got {item!r}", field="loads")
        loads.append(value)
    return loads


def make_grid(base: RunOptions, policies: Iterable[str], loads: Iterable[float]
              ) -> list[RunOptions]:
    """Policy-major grid; every policy name is checked before anything runs."""
    from gefion.twin.run import make_policy

    cells = [base.with_(policy=p, load=load) for p in policies for load in loads]
    for cell in cells:
        make_policy(cell)
    return cells


def large_job_wait(result: SimResult, min_gpus: int = LARGE_JOB_GPUS,
                   q: float = 99.0) -> tuple[int, float | None]:
    """How many jobs of ``>= min_gpus`` GPUs started, and the ``q``-th percentile of their
    waits (seconds, numpy's linear percentile)."""
    waits = [job.first_start_s - job.submit_s for job in result.jobs
             if job.gpus >= min_gpus and math.isfinite(job.first_start_s)]
    if not waits:
        return 0, None
    # rounded as gefion.twin.metrics rounds, so the JSON is as reproducible as the summary
    return len(waits), round(float(np.percentile(np.array(waits, np.float64), q)), 6)


def run_cell(options: RunOptions) -> CompareRun:
    """Run one cell (top-level, so a worker process can import it)."""
    outcome = run_twin(options)
    jobs, p99 = large_job_wait(outcome.result)
    return CompareRun(options, outcome.summary, jobs, p99)


def _context() -> Any:
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        ctx.set_forkserver_preload(["gefion.twin.compare"])
    return ctx


def run_grid(cells: Sequence[RunOptions], *, workers: int | None = None,
             on_done: Callable[[CompareRun], None] | None = None) -> list[CompareRun]:
    """Run every cell, ``workers`` at a time (default ``min(len(cells), cpu_count)``);
    results come back in grid order. One worker runs in this process."""
    workers = workers or min(len(cells), os.cpu_count() or 1)
    if workers <= 1 or len(cells) <= 1:
        out = []
        for cell in cells:
            out.append(run_cell(cell))
            if on_done:
                on_done(out[-1])
        return out
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: dict[int, CompareRun] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
        futures = {pool.submit(run_cell, cell): k for k, cell in enumerate(cells)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if on_done:
                    on_done(results[futures[future]])
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # one failed: start no more
            raise
    return [results[k] for k in range(len(cells))]


# -- output ----------------------------------------------------------------------------------

COLUMNS = ("policy", "load", "jobs", "avg JCT", "p99 wait",
           f"p99 wait ≥{LARGE_JOB_GPUS} GPUs", "allocation", "preemptions", "energy kWh")


def columns(traces: Sequence[str] | None = None) -> tuple[str, ...]:
    """The table's header: :data:`COLUMNS`, after a ``trace`` column when runs have traces."""
    return COLUMNS if traces is None else ("trace", *COLUMNS)


def table_rows(runs: Sequence[CompareRun], *, counts: bool = True,
               traces: Sequence[str] | None = None) -> list[tuple[str, ...]]:
    """The compare table (Rich and Markdown share it); ``counts``: say how many large jobs
    the p99 is over; ``traces``: one label per run, shown first (see :func:`columns`)."""
    rows = [_row(run, counts) for run in runs]
    if traces is None:
        return rows
    return [(trace, *row) for trace, row in zip(_labels(runs, traces), rows, strict=True)]


def _row(run: CompareRun, counts: bool) -> tuple[str, ...]:
    from gefion.twin.report import fmt_fraction, fmt_number, fmt_short

    return (run.options.policy, f"{run.options.load:g}", fmt_number(run.summary.get("jobs")),
            fmt_short(run.summary.get("avg_jct_s")), fmt_short(run.summary.get("p99_wait_s")),
            fmt_short(run.large_p99_wait_s) + (_count(run.large_jobs, "job") if counts
                                               else ""),
            fmt_fraction(run.summary.get("gpu_allocation")),
            fmt_number(run.summary.get("preemptions")),
            fmt_number(run.summary.get("energy_kwh")))


def _labels(runs: Sequence[CompareRun], traces: Sequence[str] | None) -> list[str]:
    """One trace label per run (``""`` for every run when there are none)."""
    if traces is None:
        return [""] * len(runs)
    if len(traces) != len(runs):
        raise ValueError(f"{len(traces)} trace labels for {len(runs)} runs")
    return list(traces)


def _count(n: int, noun: str) -> str:
    return f" ({n:,} {noun}{'' if n == 1 else 's'})" if n else ""


def compare_json(runs: Sequence[CompareRun]) -> dict[str, Any]:
    first = runs[0].options if runs else None
    return {"trace": first.trace if first else None,
            "cluster": first.cluster if first else None,
            "seed": first.seed if first else None,
            "runs": [run.to_json() for run in runs]}


def plot_compare(runs: Sequence[CompareRun], path: Path, *,
                 traces: Sequence[str] | None = None) -> Path:
    """Grouped bars: avg JCT and p99 wait (hours) per policy, one bar per load; with
    ``traces`` (one label per run), one column of the two panels per trace."""
    from gefion.twin.report import figure, save_png

    labels = _labels(runs, traces)
    facets = list(dict.fromkeys(labels))
    policies = list(dict.fromkeys(run.options.policy for run in runs))
    loads = list(dict.fromkeys(run.options.load for run in runs))
    cell: Mapping[tuple[str, str, float], CompareRun] = {
        (label, run.options.policy, run.options.load): run
        for label, run in zip(labels, runs, strict=True)}
    x = np.arange(len(policies))
    width = 0.8 / max(len(loads), 1)
    panel_in = max(6.0, 1.6 * len(policies) + 3)
    with figure(panel_in if len(facets) <= 1 else 0.75 * panel_in * len(facets), 6.5) as fig:
        axes = fig.subplots(2, max(len(facets), 1), sharex="col", squeeze=False)
        for col, facet in enumerate(facets):
            top, bottom = axes[0][col], axes[1][col]
            for ax, key, label in ((top, "avg_jct_s", "average JCT (hours)"),
                                   (bottom, "p99_wait_s", "p99 waiting time (hours)")):
                for k, load in enumerate(loads):
                    values = [float(cell[facet, p, load].summary.get(key) or 0.0) / 3600.0
                              if (facet, p, load) in cell else 0.0 for p in policies]
                    # one legend for the figure: label the bars of the first panel only
                    bars = ax.bar(x - 0.4 + width * (k + 0.5), values, width,
                                  label=f"load {load:g}" if ax is axes[0][0] else None)
                    ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
                if col == 0:
                    ax.set_ylabel(label)
                ax.margins(y=0.15)
                ax.grid(True, axis="y", alpha=0.3)
            if facet:
                top.set_title(facet, fontsize=10)
            bottom.set_xticks(x, policies)
            bottom.set_xlabel("policy")
        first = runs[0].options if runs else None
        if not first:
            fig.suptitle("Policies compared")
        elif len(facets) == 1:
            fig.suptitle(f"Policies compared — {facets[0] or first.trace} on {first.cluster}")
        else:
            fig.suptitle(f"Policies compared — {len(facets)} traces on {first.cluster}")
        fig.legend(loc="outside lower center", ncols=max(len(loads), 1))
        return save_png(fig, path)


def write_compare_report(runs: Sequence[CompareRun], out_dir: str | Path, *,
                         traces: Sequence[str] | None = None,
                         stem: str = "compare") -> list[Path]:
    """``<stem>.md`` (the table) and ``<stem>.png`` in ``out_dir`` (created); ``traces``:
    one label per run, for a trace column and a column of panels per trace."""
    from gefion.twin.report import markdown_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = runs[0].options if runs else None
    if not first:
        heading = "# Policies compared"
    elif traces is None:
        heading = f"# Policies compared: {first.trace} on {first.cluster}, seed {first.seed}"
    else:
        heading = (f"# Policies compared: {', '.join(dict.fromkeys(traces))} on "
                   f"{first.cluster}, seed {first.seed}")
    what = "per policy and load" + ("" if traces is None else ", one column per trace")
    lines = [heading, "",
             *markdown_table(columns(traces), table_rows(runs, traces=traces)), "",
             f"![avg JCT and p99 wait {what}]({stem}.png)", ""]
    report = out / f"{stem}.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return [report, plot_compare(runs, out / f"{stem}.png", traces=traces)]
