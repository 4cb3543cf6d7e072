"""Local executor throughput and launch latency, against bare process start-up in the same run.

    .venv/bin/python bench/bench_executor.py               # 200 jobs, both launchers
    .venv/bin/python bench/bench_executor.py --jobs 500 --launcher fork --dir /dev/shm

Each job is ``#!/bin/sh\\ntrue``. Figures:

* **jobs/s end to end**: from the first ``launch`` to the last exit seen by ``poll`` (the
  controller's loop: launch them all one after another, then ``wait`` + ``poll`` until every
  exit is in), divided into the number of jobs.
* **launch → running**: how long ``launch`` takes; it returns once the script runs (median
  and p95, ms). The first launch of a fork-server executor also starts the fork server and
  is left out of the latency figures (it is in the end-to-end time).
* **controller CPU/job**: CPU the controller's process spends per job (launch + poll).

Baseline, measured in the same run: ``subprocess.run(["/bin/sh", "-c", "true"])`` in a loop —
the cheapest way to run a trivial job with nothing around it (no supervisor, no files, no
user switch, no limits). Ratios are executor / baseline for rates and baseline / executor for
latencies, so > 1 is better than the baseline and < 1 is the price of supervision.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gefion.executor.local import Launcher, LocalExecutor
from gefion.executor.spec import LaunchSpec

SCRIPT = "#!/bin/sh\ntrue\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def baseline(jobs: int) -> tuple[float, list[float]]:
    """jobs/s and per-job latencies (s) of bare ``sh -c true`` runs."""
    latencies = []
    started = time.perf_counter()
    for _ in range(jobs):
        t = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
        latencies.append(time.perf_counter() - t)
    return jobs / (time.perf_counter() - started), latencies


def executor_run(jobs: int, launcher: Launcher, work: Path) -> dict[str, float]:
    user = pwd.getpwuid(os.geteuid()).pw_name
    latencies: list[float] = []
    seen = 0
    with LocalExecutor(work / f"run-{launcher}", launcher=launcher) as executor:
        cpu0, started = time.process_time(), time.perf_counter()
        for job_id in range(1, jobs + 1):
            spec = LaunchSpec(job_id=job_id, name="bench", user=user, script=SCRIPT,
                              workdir=str(work), node="localhost", stdout_path="/dev/null",
                              stderr_path="/dev/null")
            t = time.perf_counter()
            executor.launch(spec)
            latencies.append(time.perf_counter() - t)
        while seen < jobs:
            executor.wait(1.0)
            for end in executor.poll():
                if end.state != "COMPLETED":
                    raise SystemExit(f"job {end.job_id} ended {end.state}: {end.reason}")
                executor.acknowledge(end.job_id)
                seen += 1
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    steady = latencies[1:] if launcher == "fork" and len(latencies) > 1 else latencies
    return {"jobs_per_s": jobs / elapsed, "median_s": statistics.median(steady),
            "p95_s": percentile(steady, 0.95), "first_s": latencies[0], "cpu_s": cpu / jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--launcher", choices=["fork", "spawn"], action="append")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the run directory goes (default: the temporary "
                             "directory; a tmpfs such as /dev/shm makes files cheaper)")
    args = parser.parse_args()
    launchers: list[Launcher] = args.launcher or ["fork", "spawn"]
    work = Path(tempfile.mkdtemp(prefix="gefion-bench-", dir=args.dir))
    try:
        base_rate, base_lat = baseline(args.jobs)
        base_median = statistics.median(base_lat)
        load = os.getloadavg()[0]
        print(f"host: {os.cpu_count()} CPUs, load {load:.1f}; {args.jobs} jobs of "
              f"`{SCRIPT.splitlines()[1]}`; run directory in {work.parent}")
        print(f"baseline  subprocess.run(sh -c true): {base_rate:7.1f} jobs/s, "
              f"median {base_median * 1e3:.2f} ms")
        print(f"{'launcher':<9} {'jobs/s':>8} {'÷ base':>7} {'launch→running median':>22} "
              f"{'p95':>8} {'base ÷':>7} {'first':>8} {'ctl CPU/job':>12}")
        for launcher in launchers:
            r = executor_run(args.jobs, launcher, work)
            print(f"{launcher:<9} {r['jobs_per_s']:8.1f} {r['jobs_per_s'] / base_rate:7.2f} "
                  f"{r['median_s'] * 1e3:19.2f} ms {r['p95_s'] * 1e3:5.2f} ms "
                  f"{base_median / r['median_s']:7.2f} {r['first_s'] * 1e3:5.1f} ms "
                  f"{r['cpu_s'] * 1e3:9.2f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
