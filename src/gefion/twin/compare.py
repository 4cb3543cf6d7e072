"""Policies side by side: a grid of twin runs (policy × load) in parallel processes.

::

    runs = run_grid(make_grid(RunOptions(trace="itp-elasticflow"),
                              ["fifo-backfill", "gefion"], [1.0, 1.5]))
    write_compare_report(runs, "out/")   # out/compare.md, out/compare.png

Each grid cell is an independent :func:`~gefion.twin.run.run_twin` in a worker process:
the same options give the same summary as a run alone, so parallelism changes only the
wall time. Workers come from a ``forkserver`` context (``spawn`` where there is none):
never a ``fork`` of a parent that may hold a progress-bar thread.
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


def table_rows(runs: Sequence[CompareRun], *, counts: bool = True) -> list[tuple[str, ...]]:
    """The compare table (Rich and Markdown share it); ``counts``: say how many large jobs
    the p99 is over."""
    from gefion.twin.report import fmt_fraction, fmt_number, fmt_short

    return [(run.options.policy, f"{run.options.load:g}", fmt_number(run.summary.get("jobs")),
             fmt_short(run.summary.get("avg_jct_s")), fmt_short(run.summary.get("p99_wait_s")),
             fmt_short(run.large_p99_wait_s) + (_count(run.large_jobs, "job") if counts
                                                else ""),
             fmt_fraction(run.summary.get("gpu_allocation")),
             fmt_number(run.summary.get("preemptions")),
             fmt_number(run.summary.get("energy_kwh")))
            for run in runs]


def _count(n: int, noun: str) -> str:
    return f" ({n:,} {noun}{'' if n == 1 else 's'})" if n else ""


def compare_json(runs: Sequence[CompareRun]) -> dict[str, Any]:
    first = runs[0].options if runs else None
    return {"trace": first.trace if first else None,
            "cluster": first.cluster if first else None,
            "seed": first.seed if first else None,
            "runs": [run.to_json() for run in runs]}


def plot_compare(runs: Sequence[CompareRun], path: Path) -> Path:
    """Grouped bars: avg JCT and p99 wait (hours) per policy, one bar per load."""
    from gefion.twin.report import figure, save_png

    policies = list(dict.fromkeys(run.options.policy for run in runs))
    loads = list(dict.fromkeys(run.options.load for run in runs))
    cell: Mapping[tuple[str, float], CompareRun] = {
        (run.options.policy, run.options.load): run for run in runs}
    x = np.arange(len(policies))
    width = 0.8 / max(len(loads), 1)
    with figure(max(6.0, 1.6 * len(policies) + 3), 6.5) as fig:
        axes = fig.subplots(2, 1, sharex=True)
        for ax, key, label in ((axes[0], "avg_jct_s", "average JCT (hours)"),
                               (axes[1], "p99_wait_s", "p99 waiting time (hours)")):
            for k, load in enumerate(loads):
                values = [float(cell[p, load].summary.get(key) or 0.0) / 3600.0
                          if (p, load) in cell else 0.0 for p in policies]
                bars = ax.bar(x - 0.4 + width * (k + 0.5), values, width,
                              label=f"load {load:g}" if ax is axes[0] else None)
                ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
            ax.set_ylabel(label)
            ax.margins(y=0.15)
            ax.grid(True, axis="y", alpha=0.3)
        axes[1].set_xticks(x, policies)
        axes[1].set_xlabel("policy")
        first = runs[0].options if runs else None
        fig.suptitle(f"Policies compared — {first.trace} on {first.cluster}"
                     if first else "Policies compared")
        fig.legend(loc="outside lower center", ncols=max(len(loads), 1))
        return save_png(fig, path)


def write_compare_report(runs: Sequence[CompareRun], out_dir: str | Path) -> list[Path]:
    """``compare.md`` (the table) and ``compare.png`` in ``out_dir`` (created)."""
    from gefion.twin.report import markdown_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = runs[0].options if runs else None
    lines = [f"# Policies compared: {first.trace} on {first.cluster}, seed {first.seed}"
             if first else "# Policies compared", "",
             *markdown_table(COLUMNS, table_rows(runs)), "",
             "![avg JCT and p99 wait per policy and load](compare.png)", ""]
    report = out / "compare.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return [report, plot_compare(runs, out / "compare.png")]
