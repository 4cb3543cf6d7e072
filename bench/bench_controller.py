"""Benchmarks of the live controller end to end (issue #4), against baselines measured in
the same run on the same machine.

    .venv/bin/python bench/bench_controller.py [--jobs 300] [--db URL]

A real ``gefion up`` (SQLite in a temporary data directory unless ``--db``) on 127.0.0.1,
driven through the Python client with the admin token it wrote on its first start:

- **submit → running**: one job at a time on an idle node; the time from sending the
  submission to the first line of its script running (the script records it), median of
  20 (goal ≤ 50 ms). Baseline: one ``GET /v1/cluster`` round trip.
- **trivial jobs end to end**: ``--jobs`` jobs of ``exit 0`` submitted at once (0 GPUs, so
  none waits for another), until the last has COMPLETED; jobs per second (goal ≥ 100/s).
  Baseline: ``subprocess.run(["/bin/sh", "-c", "exit 0"])`` in a loop, the floor of running
  a process from Python here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from gefion.client import Client
from gefion.client.errors import ServerUnreachable

TRIVIAL = "#!/bin/sh\nexit 0\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(data_dir: Path, port: int, db: str | None, options: tuple[str, ...] = (
        "--emulate-gpus", "8")) -> tuple[subprocess.Popen[bytes], str]:
    """``gefion up`` on a new site: the process and its bootstrap admin token. ``options``
    are more of ``gefion up``'s (by default, one emulated node of 8 GPUs)."""
    argv = [sys.executable, "-m", "gefion.cli.main", "up", "--data-dir", str(data_dir),
            "--port", str(port), "--kill-grace", "1", *options]
    if db:
        argv += ["--db", db]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    token_file = data_dir / "admin.token"
    while not token_file.exists():  # written before the API serves
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("gefion up did not start, or wrote no admin token (--db: give "
                             "an empty database)")
        time.sleep(0.05)
    token = token_file.read_text().strip()
    with Client(f"http://127.0.0.1:{port}", token=token, retries=0) as probe:
        while True:
            try:
                probe.cluster()
                return proc, token
            except ServerUnreachable:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gefion up did not start") from None
                time.sleep(0.05)


def submit_to_running(client: Client, work: str, n: int = 20) -> list[float]:
    """Seconds from sending a submission to the first line of its script running (the
    script writes the time it starts)."""
    latencies = []
    for k in range(n):
        mark = Path(work) / f"started-{k}"
        sent = time.time()
        job_id = client.submit(f"#!/bin/sh\ndate +%s.%N > {mark}.tmp && mv {mark}.tmp {mark}\n"
                               "sleep 0.1\n", cwd=work).job_ids[0]
        while not mark.exists():
            time.sleep(0.001)
        latencies.append(float(mark.read_text()) - sent)
        while not client.job(job_id).ended:
            time.sleep(0.01)
    return latencies


def end_to_end(client: Client, work: str, n: int) -> float:
    began = time.perf_counter()
    ids = [client.submit(TRIVIAL, cwd=work, argv=["--gpus=0"]).job_ids[0] for _ in range(n)]
    pending = set(ids)
    while pending:
        page = client.jobs(states="COMPLETED,FAILED,CANCELLED,TIMEOUT", limit=10_000)
        pending -= {job.id for job in page.jobs}
        if pending:
            time.sleep(0.02)
    return n / (time.perf_counter() - began)


def baseline_round_trip(client: Client, n: int = 50) -> float:
    began = time.perf_counter()
    for _ in range(n):
        client.cluster()
    return (time.perf_counter() - began) / n


def baseline_processes(n: int = 200) -> float:
    began = time.perf_counter()
    for _ in range(n):
        subprocess.run(["/bin/sh", "-c", "exit 0"], check=True)
    return n / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs of the end-to-end run")
    parser.add_argument("--db", default=None, help="database URL (default: SQLite)")
    args = parser.parse_args()
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="gefion-bench-", dir="/tmp"))
    root.chmod(0o755)
    work = root / "work"
    work.mkdir()
    port = free_port()
    proc, token = start(root / "data", port, args.db)
    try:
        with Client(f"http://127.0.0.1:{port}", token=token) as client:
            rtt = baseline_round_trip(client)
            latencies = submit_to_running(client, str(work))
            procs = baseline_processes()
            rate = end_to_end(client, str(work), args.jobs)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    median = statistics.median(latencies)
    console.print(f"submit → running: median {median * 1000:.1f} ms, "
                  f"p90 {sorted(latencies)[int(0.9 * len(latencies))] * 1000:.1f} ms "
                  f"(= {median / rtt:.1f}× one API round trip of {rtt * 1000:.2f} ms; "
                  "goal ≤ 50 ms)")
    console.print(f"trivial jobs end to end: {rate:.1f} jobs/s over {args.jobs} "
                  f"(= {rate / procs:.2f}× bare subprocess.run at {procs:.0f}/s; "
                  "goal ≥ 100/s)")


if __name__ == "__main__":
    main()
