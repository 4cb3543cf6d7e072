"""Cycle latency of gefion.core, against a naive EASY scheduler measured in the same run.

    .venv/bin/python bench/bench_cycle.py            # both scales
    .venv/bin/python bench/bench_cycle.py --quick    # fewer repetitions

Scales (issue #2): ``gefion`` (191 nodes) with 10,000 pending and 1,000 running jobs, and
``synthetic:12500x8`` (100,000 GPUs) with 100,000 pending on a full machine. Each repetition
builds a fresh snapshot (so nothing cached from an earlier cycle helps) and times
``run_cycle`` alone, then snapshot building plus the cycle ("build + cycle": what a body
pays when it rebuilds the snapshot from scratch every cycle). Figures: median and p95
in milliseconds, and the naive baseline's median divided by ours.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.naive import naive_easy_cycle
from bench.workloads import busy_jobs
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gefion.core.cycle import run_cycle
from gefion.core.policies import get_policy
from gefion.core.snapshot import build_snapshot
from gefion.core.topology import preset

NOW = 100_000.0
SCALES = [("gefion", 1_000, 10_000), ("synthetic:12500x8", 100_000, 100_000)]
POLICIES = ["gefion", "fifo-backfill", "fifo", "las"]
#: LAS evicts thousands of long-running jobs for the 100,000 fresh ones of this synthetic
#: queue in one cycle — a worst case, not a steady state; it is measured at Gefion scale.
SKIP = {("synthetic:12500x8", "las")}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--scale", choices=[s[0] for s in SCALES], action="append")
    args = parser.parse_args()
    reps = {"gefion": 5 if args.quick else 15, "synthetic:12500x8": 2 if args.quick else 5}
    table = Table(title="cycle latency (ms)")
    for col in ("cluster", "pending", "running", "policy", "starts", "median", "p95",
                "build + cycle", "naive median", "naive / ours"):
        table.add_column(col, justify="right")
    console = Console()
    with Progress(console=console, transient=True) as progress:
        for name, running, pending in SCALES:
            if args.scale and name not in args.scale:
                continue
            cluster = preset(name)
            jobs = busy_jobs(cluster, running, pending)
            t0 = time.perf_counter()
            snap = build_snapshot(cluster, jobs, NOW)
            build_ms = (time.perf_counter() - t0) * 1000
            naive: list[float] = []
            naive_reps = 1 if name != "gefion" else reps[name]  # a full scan per job: slow
            task = progress.add_task(f"{name} naive", total=naive_reps)
            for _ in range(naive_reps):
                fresh = build_snapshot(cluster, jobs, NOW)
                t0 = time.perf_counter()
                naive_easy_cycle(fresh, NOW)  # on the same snapshot, build not counted
                naive.append((time.perf_counter() - t0) * 1000)
                progress.advance(task)
            naive_med = statistics.median(naive)
            for policy_name in POLICIES:
                if (name, policy_name) in SKIP:
                    continue
                policy = get_policy(policy_name)
                times: list[float] = []
                totals: list[float] = []
                task = progress.add_task(f"{name} {policy_name}", total=reps[name])
                starts = 0
                for _ in range(reps[name]):
                    t_build = time.perf_counter()
                    fresh = build_snapshot(cluster, jobs, NOW)
                    t0 = time.perf_counter()
                    result = run_cycle(fresh, NOW, policy)
                    t1 = time.perf_counter()
                    times.append((t1 - t0) * 1000)
                    totals.append((t1 - t_build) * 1000)
                    starts = len(result.starts)
                    progress.advance(task)
                med = statistics.median(times)
                table.add_row(name, f"{len(snap.pending):,}", f"{len(snap.running):,}",
                              policy_name, str(starts), f"{med:.1f}",
                              f"{percentile(times, 0.95):.1f}",
                              f"{statistics.median(totals):.1f}", f"{naive_med:.1f}",
                              f"{naive_med / med:.2f}×")
            console.print(f"{name}: snapshot build {build_ms:.1f} ms "
                          f"({len(snap.pending):,} pending, {len(snap.running):,} running)")
    console.print(table)


if __name__ == "__main__":
    main()
