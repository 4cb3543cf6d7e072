"""Benchmarks of the digital twin (issue #3), each figure a ratio against a baseline measured
in the same run, on the same machine.

    .venv/bin/python bench/bench_twin.py                       # everything
    .venv/bin/python bench/bench_twin.py --only philly,itp     # some parts
    .venv/bin/python bench/bench_twin.py --only million --jobs 100000

Parts:

- ``philly``: the Philly week (2017-11-06 to 2017-11-13, jobs of 1/2/4/8 GPUs, 6,360 jobs)
  on ``synthetic:48x8`` with strict FIFO. CPU seconds (``time.process_time``) of our
  simulation against a naive pure-Python FIFO simulator written below (the baseline, which
  also cross-checks the average JCT), and CPU seconds of the whole ``gefion twin run``
  command, start-up included (``getrusage(RUSAGE_CHILDREN)``), against a bare interpreter
  start. Peers for reference (not measured here): Tiresias ~23 CPU-s, Gavel ~53 CPU-s.
- ``itp``: the full ITP trace (69,351 jobs) on ``gefion`` with the ``gefion`` policy: wall
  seconds and peak RSS, in a fresh child process, against loading + modelling the trace.
- ``million``: a generated workload (``--jobs``, default 1,000,000) on
  ``synthetic:12500x8`` at 75% offered load: wall seconds and peak RSS against generating it.
- ``table``: avg JCT, p99 wait, p99 wait of jobs >= 64 GPUs, allocation and preemptions
  of every policy on ITP at load 1.0 and 1.5 (parallel runs), as a README table, with the
  avg JCT of each policy as a ratio to ``fifo-backfill`` (the Slurm-like baseline);
  ``--table-trace itp-elasticflow/cluster10`` for a quick look.
"""

from __future__ import annotations

import argparse
import compileall
import heapq
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

PARTS = ("philly", "itp", "million", "table")
#: The Philly week of issue #3, as ``gefion twin run`` options.
PHILLY_ARGS = ("--trace", "philly-pollux", "--from", "2017-11-06 00:00", "--to",
               "2017-11-13 00:00", "--gpus", "1,2,4,8", "--cluster", "synthetic:48x8",
               "--policy", "fifo")
PEER_BAND_S = (27_555.0, 29_303.0)  # avg JCT of Tiresias, Gavel and Helios on the week
TIRESIAS_CPU_S, GAVEL_CPU_S = 23.0, 53.0
COMMAND_RUNS = 5  # runs of the whole command (and of a bare interpreter) for a median
ROOT = Path(__file__).resolve().parents[1]


def cpu_s() -> float:
    return time.process_time()


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# -- the baseline simulator -------------------------------------------------------------------

def naive_fifo(jobs: list[tuple[float, float, int]], nodes: int, gpus_per_node: int, *,
               best_fit: bool = False) -> float:
    """Strict FIFO with consolidated placement, in plain Python: a job of <= one node's GPUs
    goes to the first node it fits on (the peers' rule; ``best_fit``: the fullest such
    node, the core's rule), a bigger one takes whole free nodes; the head of the queue
    blocks everything behind it. ``jobs`` are ``(submit_s, duration_s, gpus)`` sorted by
    submit. Returns the average JCT in seconds."""
    free = [gpus_per_node] * nodes
    running: list[tuple[float, int, list[tuple[int, int]]]] = []
    queue: list[tuple[float, float, int]] = []
    total_jct, arrived, seq, now = 0.0, 0, 0, 0.0

    def place(gpus: int) -> list[tuple[int, int]] | None:
        if gpus <= gpus_per_node:
            best = -1
            for k, f in enumerate(free):
                if f >= gpus and (best < 0 or f < free[best]):
                    best = k
                    if not best_fit:
                        break
            return None if best < 0 else [(best, gpus)]
        need = -(-gpus // gpus_per_node)
        idle = [k for k, f in enumerate(free) if f == gpus_per_node][:need]
        return [(k, gpus_per_node) for k in idle] if len(idle) == need else None

    while arrived < len(jobs) or queue or running:
        next_arrival = jobs[arrived][0] if arrived < len(jobs) else float("inf")
        next_end = running[0][0] if running else float("inf")
        now = min(next_arrival, next_end)
        while running and running[0][0] <= now:
            for k, g in heapq.heappop(running)[2]:
                free[k] += g
        while arrived < len(jobs) and jobs[arrived][0] <= now:
            queue.append(jobs[arrived])
            arrived += 1
        while queue:
            spot = place(queue[0][2])
            if spot is None:
                break
            submit, duration, _ = queue.pop(0)
            for k, g in spot:
                free[k] -= g
            total_jct += now + duration - submit
            seq += 1
            heapq.heappush(running, (now + duration, seq, spot))
    return total_jct / max(len(jobs), 1)


# -- parts ------------------------------------------------------------------------------------

def bench_philly(traces: str | None) -> dict[str, Any]:
    from gefion.twin.engine import simulate
    from gefion.twin.metrics import summarize
    from gefion.twin.run import RunOptions, make_cluster, make_policy, make_trace

    options = RunOptions(trace="philly-pollux", window_from="2017-11-06 00:00",
                         window_to="2017-11-13 00:00", gpus_in=(1, 2, 4, 8),
                         cluster="synthetic:48x8", policy="fifo", traces=traces)
    t0 = cpu_s()
    trace = make_trace(options)
    t1 = cpu_s()
    cluster, policy = make_cluster(options), make_policy(options)
    t2 = cpu_s()
    result = simulate(trace, cluster, policy, seed=options.seed)
    t3 = cpu_s()
    general = simulate(trace, cluster, policy, seed=options.seed, fast_path=False)
    t3g = cpu_s()
    ours = summarize(result)["avg_jct_s"]
    assert summarize(general)["avg_jct_s"] == ours, "the fast path changed the result"
    jobs = [(j.submit_s, j.duration_s, j.gpus) for j in trace.jobs]
    t4 = cpu_s()
    naive = naive_fifo(jobs, 48, 8)
    t5 = cpu_s()
    naive_best = naive_fifo(jobs, 48, 8, best_fit=True)
    # The console script's module (gefion = gefion.cli.fastqueue:main), as a user runs it,
    # with its bytecode compiled, as an installed package has it (pip compiles at install;
    # an editable checkout under PYTHONDONTWRITEBYTECODE=1 would compile every import).
    compileall.compile_dir(str(ROOT / "src" / "gefion"), quiet=1)
    command = [sys.executable, "-m", "gefion.cli.fastqueue", "twin", "run", *PHILLY_ARGS,
               "--json", "-", "--quiet", *(["--traces", traces] if traces else [])]
    # Start-up is most of the command: the median of a few runs of each, one after the other.
    bare, whole = [], []
    for _ in range(COMMAND_RUNS):
        c0 = children_cpu_s()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        c1 = children_cpu_s()
        out = subprocess.run(command, check=True, capture_output=True, text=True)
        c2 = children_cpu_s()
        bare.append(c1 - c0)
        whole.append(c2 - c1)
    return {"jobs": len(trace), "load_model_cpu_s": t1 - t0, "simulate_cpu_s": t3 - t2,
            "snapshot_cycle_cpu_s": t3g - t3,
            "naive_fifo_cpu_s": t5 - t4, "avg_jct_s": ours, "naive_avg_jct_s": naive,
            "naive_best_fit_avg_jct_s": naive_best,
            "command_cpu_s": statistics.median(whole), "command_min_cpu_s": min(whole),
            "interpreter_cpu_s": statistics.median(bare),
            "command_avg_jct_s": json.loads(out.stdout)["avg_jct_s"]}


def simulate_measured(trace_of: Callable[[], Any], cluster: Any, policy: Any
                      ) -> dict[str, Any]:
    """Wall seconds to build the trace (the baseline), to simulate and to summarise; peak
    RSS after the trace and at the end."""
    from gefion.twin.engine import simulate
    from gefion.twin.metrics import summarize

    t0 = time.perf_counter()
    trace = trace_of()
    t1 = time.perf_counter()
    rss_trace = peak_rss_mib()
    result = simulate(trace, cluster, policy, seed=7)
    t2 = time.perf_counter()
    summary = summarize(result)
    t3 = time.perf_counter()
    return {"jobs": summary["jobs"], "trace_s": t1 - t0, "simulate_s": t2 - t1,
            "summarize_s": t3 - t2, "rss_after_trace_mib": rss_trace,
            "peak_rss_mib": peak_rss_mib(), "avg_jct_s": summary["avg_jct_s"],
            "gpu_allocation": summary["gpu_allocation"]}


def child_itp(traces: str | None) -> dict[str, Any]:
    from gefion.twin.run import RunOptions, make_cluster, make_policy, make_trace

    options = RunOptions(trace="itp-elasticflow", cluster="gefion", policy="gefion",
                         traces=traces)
    return simulate_measured(lambda: make_trace(options), make_cluster(options),
                             make_policy(options))


def child_million(n_jobs: int, policy: str) -> dict[str, Any]:
    from gefion.core.policies import get_policy
    from gefion.core.topology import preset
    from gefion.twin.workload import generate

    cluster = preset("synthetic:12500x8")
    return simulate_measured(
        lambda: generate(n_jobs, seed=7, offered_gpus=0.75 * cluster.total_gpus), cluster,
        get_policy(policy))


def in_child(part: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run a part in a fresh interpreter, so that its peak RSS is its own."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", part,
               "--jobs", str(args.jobs), "--policy", args.policy]
    if args.traces:
        command += ["--traces", args.traces]
    t0 = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return {**json.loads(out.stdout.splitlines()[-1]), "process_wall_s":
            time.perf_counter() - t0}


def bench_table(trace: str, traces: str | None, workers: int | None) -> list[Any]:
    from gefion.core.policies import POLICIES
    from gefion.twin.compare import make_grid, run_grid
    from gefion.twin.run import RunOptions

    cells = make_grid(RunOptions(trace=trace, cluster="gefion", traces=traces),
                      list(POLICIES), [1.0, 1.5])
    return run_grid(cells, workers=workers)


# -- printing ---------------------------------------------------------------------------------

def ratio(a: float, b: float) -> str:
    return f"{a / b:.3g}×" if b > 0 else "-"


def report_philly(r: dict[str, Any]) -> list[str]:
    lo, hi = PEER_BAND_S
    inside = "inside" if lo <= r["avg_jct_s"] <= hi else "OUTSIDE"
    return [
        f"### Philly week ({r['jobs']:,} jobs, synthetic:48x8, fifo)", "",
        "| measurement | value | baseline | ratio |", "|---|---|---|---|",
        f"| simulate, CPU s | {r['simulate_cpu_s']:.3f} | naive Python FIFO "
        f"{r['naive_fifo_cpu_s']:.3f} | {ratio(r['simulate_cpu_s'], r['naive_fifo_cpu_s'])} |",
        f"| simulate on the snapshot cycle (`fast_path=False`), CPU s | "
        f"{r['snapshot_cycle_cpu_s']:.3f} | simulate {r['simulate_cpu_s']:.3f} | "
        f"{ratio(r['snapshot_cycle_cpu_s'], r['simulate_cpu_s'])} |",
        f"| load + model trace, CPU s | {r['load_model_cpu_s']:.3f} | simulate "
        f"{r['simulate_cpu_s']:.3f} | {ratio(r['load_model_cpu_s'], r['simulate_cpu_s'])} |",
        f"| whole `gefion twin run`, CPU s (median of {COMMAND_RUNS}; least "
        f"{r['command_min_cpu_s']:.3f}) | {r['command_cpu_s']:.3f} | bare interpreter "
        f"{r['interpreter_cpu_s']:.3f} | {ratio(r['command_cpu_s'], r['interpreter_cpu_s'])} |",
        f"| whole command vs Tiresias ({TIRESIAS_CPU_S:g} CPU s, not measured here) | "
        f"{r['command_cpu_s']:.3f} | {TIRESIAS_CPU_S:g} | "
        f"{ratio(r['command_cpu_s'], TIRESIAS_CPU_S)} (goal < 0.5 s: ≤ 0.0217×) |",
        f"| avg JCT, s | {r['avg_jct_s']:,.0f} ({inside} the peers' {lo:,.0f}–{hi:,.0f}) | "
        f"naive FIFO, first fit {r['naive_avg_jct_s']:,.0f}; best fit "
        f"{r['naive_best_fit_avg_jct_s']:,.0f} | {ratio(r['avg_jct_s'], r['naive_avg_jct_s'])} |",
    ]


def report_scale(title: str, r: dict[str, Any], base_name: str, goal: str) -> list[str]:
    return [f"### {title} ({r['jobs']:,} jobs)", "",
            "| measurement | value | baseline | ratio |", "|---|---|---|---|",
            f"| simulate, wall s | {r['simulate_s']:.2f} | {base_name} {r['trace_s']:.2f} | "
            f"{ratio(r['simulate_s'], r['trace_s'])} |",
            f"| whole process, wall s (goal {goal.split(',')[0]}) | "
            f"{r['process_wall_s']:.2f} | | |",
            f"| peak RSS, MiB (goal {goal.split(', ')[1]}) | {r['peak_rss_mib']:,.0f} | "
            f"after the trace {r['rss_after_trace_mib']:,.0f} | "
            f"{ratio(r['peak_rss_mib'], r['rss_after_trace_mib'])} |",
            f"| avg JCT / allocation | {fmt_s(r['avg_jct_s'])} / "
            f"{100 * r['gpu_allocation']:.1f}% | | |"]


def fmt_s(seconds: float) -> str:
    return f"{seconds:,.0f} s"


def report_table(runs: list[Any]) -> list[str]:
    from gefion.twin.report import fmt_fraction, fmt_short

    base = {run.options.load: run.summary["avg_jct_s"] for run in runs
            if run.options.policy == "fifo-backfill"}
    lines = [f"### Policies on {runs[0].options.trace} ({runs[0].summary['jobs']:,} jobs, "
             "gefion, seed 0)", "",
             "| policy | load | avg JCT | vs fifo-backfill | p99 wait | p99 wait ≥64 GPUs "
             "| allocation | preemptions |", "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        s = run.summary
        lines.append(f"| {run.options.policy} | {run.options.load:g} | "
                     f"{fmt_short(s['avg_jct_s'])} | "
                     f"{ratio(s['avg_jct_s'], base.get(run.options.load, 0.0))} | "
                     f"{fmt_short(s['p99_wait_s'])} | {fmt_short(run.large_p99_wait_s)} | "
                     f"{fmt_fraction(s['gpu_allocation'])} | {s['preemptions']:,} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs of 'million'")
    parser.add_argument("--policy", default="gefion", help="policy of 'million'")
    parser.add_argument("--traces", default=None, help="the traces folder")
    parser.add_argument("--workers", type=int, default=None, help="processes for 'table'")
    parser.add_argument("--table-trace", default="itp-elasticflow",
                        help="trace of 'table' (e.g. itp-elasticflow/cluster03 for a quick look)")
    parser.add_argument("--child", choices=("itp", "million"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child_itp(args.traces) if args.child == "itp" else \
            child_million(args.jobs, args.policy)
        print(json.dumps(result))
        return
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    jobs: dict[str, Callable[[], list[str]]] = {
        "philly": lambda: report_philly(bench_philly(args.traces)),
        "itp": lambda: report_scale("Full ITP trace on gefion, policy gefion",
                                    in_child("itp", args), "load + model",
                                    "≤ 10 s, ≤ 1 GiB"),
        "million": lambda: report_scale(
            f"Generated workload on synthetic:12500x8, policy {args.policy}",
            in_child("million", args), "generate", "≤ 5 min, ≤ 4 GiB"),
        "table": lambda: report_table(bench_table(args.table_trace, args.traces,
                                                  args.workers)),
    }
    console = Console(stderr=True)
    lines: list[str] = [f"## Twin benchmarks ({os.cpu_count()} CPUs, Python "
                        f"{sys.version.split()[0]})", ""]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmarks", total=len(parts))
        for part in parts:
            progress.update(task, description=f"bench: {part}")
            lines += [*jobs[part](), ""]
            progress.advance(task)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
