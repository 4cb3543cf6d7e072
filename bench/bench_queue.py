"""REST submissions/s and ``gefion queue`` over 10,000 jobs, against baselines of the same run.

    .venv/bin/python bench/bench_queue.py              # 10,000 jobs, 1/8/64 clients
    .venv/bin/python bench/bench_queue.py --quick      # 2,000 jobs, fewer runs
    .venv/bin/python bench/bench_queue.py --queue-only 10000  # part 2 alone, at N jobs
    .venv/bin/python bench/bench_queue.py --no-loop    # scheduler loop off in the server
    .venv/bin/python bench/bench_queue.py --db postgresql://gefion:gefion@127.0.0.1/EMPTY_DB

The server is a separate process (this file with ``--serve``): a controller on SQLite in a
temporary directory (one emulated 8-GPU node), its scheduler loop on unless ``--no-loop``,
and the API on uvicorn on 127.0.0.1, bootstrapped as ``gefion up`` does it (an admin and
its token, which every request sends, as the CLI does; a project ``nlp``), its garbage
collector set for serving (:func:`gefion.api.server.tune_gc_for_serving`). Every job is
submitted held (``--hold``), so nothing runs and the queue only grows.

1. **Submissions/s** with 1, 8 and 64 concurrent clients (threads, one httpx client each,
   each request a realistic script, environment and idempotency key, as the CLI sends),
   against the same clients' ``GET /v1/nodes`` requests/s (one small read: about the cost
   of the HTTP stack alone), then the same clients sending batches of 100 submissions
   (``POST /v1/jobs/batch``, one transaction each): the same submission 100 times, and a
   sweep (each submission with its own ``--job-name`` flag and one environment variable
   of its own, so that no two parse alike). Goal (issue #4): ≥ 2,000 submissions/s.
2. **``gefion queue``** with the jobs submitted above (10,000 by default), the whole
   command as a user runs it — a new process through the console entry point
   (``gefion.cli.fastqueue:main``), start-up included — against ``python -c pass`` measured
   in the same run, and next to the Typer command (``gefion.cli.main``, Rich) and
   ``--json``. Goal: ≤ 0.16 s (Slurm's squeue).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

SCRIPT = """#!/bin/bash
#SBATCH --job-name=train
#SBATCH --gpus=8
#SBATCH --time=2:00:00
#SBATCH --account=nlp
srun python train.py --config configs/large.yaml
"""
BATCH = 100  # submissions per POST /v1/jobs/batch
#: The headers of every request: the bench admin's token (set once the server is up).
AUTH: dict[str, str] = {}
ENTRY_POINT = """import sys
from gefion.cli.fastqueue import main
if __name__ == "__main__":
    sys.argv[0] = "gefion"
    sys.exit(main())
"""


# -- the server process -------------------------------------------------------------------

def serve(data_dir: Path, loop: bool, db: str | None) -> None:
    """Run a controller and its API until stdin closes; print the URL when ready."""
    from gefion.api import create_app
    from gefion.api.server import ApiServer, tune_gc_for_serving
    from gefion.controller.bootstrap import bootstrap_admin, local_admin_name
    from gefion.controller.config import ControllerConfig
    from gefion.controller.service import Controller

    controller = Controller(ControllerConfig(data_dir=data_dir, db_url=db, emulate_gpus=8,
                                             node_name="bench", refresh_s=30))
    controller.start(loop=loop)
    assert controller.store is not None
    token = bootstrap_admin(controller.store, admin=local_admin_name(),
                            default_project="default", ts=controller.now())
    controller.store.create_project("nlp", ts=controller.now(), by="bench")
    app = create_app(controller)
    tune_gc_for_serving()
    with ApiServer(app) as server:
        stack = [m for m in ("uvloop", "httptools") if importlib.util.find_spec(m)]
        print(server.url, "+".join(stack) or "asyncio+h11", token, flush=True)
        sys.stdin.read()
    controller.stop()


# -- load ---------------------------------------------------------------------------------

def hammer(url: str, clients: int, total: int,
           request: Callable[..., object]) -> float:
    """``total`` requests split over ``clients`` threads (each sending the bench's token);
    requests per second."""
    import httpx

    per = [total // clients + (i < total % clients) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        with httpx.Client(base_url=url, timeout=120, headers=AUTH) as http:
            http.get("/v1/nodes").raise_for_status()  # connect first, outside the timing
            barrier.wait()
            try:
                for _ in range(n):
                    request(http)
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in per]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return total / elapsed


def submit_request(env: dict[str, str]) -> Callable[..., object]:
    body = {"script": SCRIPT, "argv": ["--hold"], "env": env, "cwd": "/tmp",
            "source": "train.sh"}

    def submit(http: object) -> object:
        response = http.post("/v1/jobs", json=body,  # type: ignore[attr-defined]
                             headers={"Idempotency-Key": str(uuid.uuid4())})
        if response.status_code != 201:
            raise RuntimeError(response.text)
        return response

    return submit


def batch_request(env: dict[str, str], size: int,
                  sweep: bool = False) -> Callable[..., object]:
    """A request of ``size`` submissions (``POST /v1/jobs/batch``), one key for the lot:
    the same one ``size`` times, or (``sweep``) each with a job name and an environment
    variable of its own."""
    items = [{"script": SCRIPT, "argv": ["--hold", *([f"--job-name=sweep-{i}"] if sweep else [])],
              "env": {**env, "SWEEP_INDEX": str(i)} if sweep else env, "cwd": "/tmp",
              "source": "train.sh"} for i in range(size)]
    body = {"submissions": items}

    def submit(http: object) -> object:
        response = http.post("/v1/jobs/batch", json=body,  # type: ignore[attr-defined]
                             headers={"Idempotency-Key": str(uuid.uuid4())})
        if response.status_code != 201:
            raise RuntimeError(response.text)
        return response

    return submit


def nodes_request(http: object) -> object:
    response = http.get("/v1/nodes")  # type: ignore[attr-defined]
    response.raise_for_status()
    return response


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process ``pid`` used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_command(argv: list[str], runs: int,
                 before: Callable[[], object] | None = None) -> tuple[float, float]:
    """(median, best) wall seconds of ``argv`` as a new process (``before`` each run,
    untimed)."""
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode:
            raise RuntimeError(f"{argv}: {proc.stderr.decode()}")
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 jobs, fewer runs")
    parser.add_argument("--no-loop", action="store_true", help="server without its loop")
    parser.add_argument("--db", metavar="URL", help="PostgreSQL URL (an empty database) "
                        "instead of SQLite in a temporary directory")
    parser.add_argument("--queue-only", metavar="N", type=int,
                        help="skip part 1: submit N held jobs in batches (one client), "
                        "then time gefion queue over exactly N pending jobs")
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve), loop=not args.no_loop, db=args.db)
        return

    jobs = 2_000 if args.quick else 10_000
    runs = 5 if args.quick else 15
    env = dict(os.environ)  # what `gefion submit` sends: the caller's environment
    with tempfile.TemporaryDirectory(prefix="gefion-bench-") as tmp:
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", tmp,
             *(["--no-loop"] if args.no_loop else []), *(["--db", args.db] if args.db else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            url, stack, token = server.stdout.readline().split()
            AUTH["Authorization"] = f"Bearer {token}"
            print(f"server {url} on uvicorn with {stack}, "
                  f"{'PostgreSQL' if args.db else 'SQLite'} "
                  f"(scheduler loop {'off' if args.no_loop else 'on'}), "
                  f"{os.cpu_count()} CPUs, environment of {len(env)} variables")
            if args.queue_only:
                whole, rest = divmod(args.queue_only, BATCH)
                hammer(url, 1, whole, batch_request(env, BATCH, True))
                if rest:
                    hammer(url, 1, 1, batch_request(env, rest, True))
                queue_bench(url, args.queue_only, runs, tmp, token)
                return
            print("\n1. REST submissions/s (held jobs) vs GET /v1/nodes requests/s")
            shares = {1: jobs // 10, 8: jobs * 3 // 10, 64: jobs - jobs // 10 - jobs * 3 // 10}
            batched_jobs = 0
            for clients, count in shares.items():
                base_n = max(500, count // 2)
                cpu = cpu_s(server.pid)
                base = hammer(url, clients, base_n, nodes_request)
                cpu_base = (cpu_s(server.pid) - cpu) / base_n * 1000
                cpu = cpu_s(server.pid)
                rate = hammer(url, clients, count, submit_request(env))
                cpu_submit = (cpu_s(server.pid) - cpu) / count * 1000
                print(f"  {clients:>2} clients: {rate:7,.0f} submissions/s "
                      f"({count:,} jobs, server CPU {cpu_submit:.2f} ms each)   "
                      f"GET /v1/nodes {base:7,.0f}/s (CPU {cpu_base:.2f} ms)   "
                      f"ratio {rate / base:.2f}")
                # At least 40 requests a row: 10 requests of 100 jobs take half a second,
                # too short to measure one client on a machine shared with anything else.
                requests = max(clients, count // BATCH, 40)
                for sweep, what in ((False, "the same"), (True, "a sweep")):
                    cpu = cpu_s(server.pid)
                    batched = hammer(url, clients, requests,
                                     batch_request(env, BATCH, sweep)) * BATCH
                    batched_jobs += requests * BATCH
                    cpu_batch = (cpu_s(server.pid) - cpu) / (requests * BATCH) * 1000
                    print(f"{'':14}{batched:7,.0f} submissions/s in batches of {BATCH} "
                          f"({what}; {requests * BATCH:,} jobs, server CPU {cpu_batch:.2f} ms "
                          f"each)   ratio {batched / base:.2f}")
            queue_bench(url, jobs + batched_jobs, runs, tmp, token)
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(timeout=60)


def queue_bench(url: str, jobs: int, runs: int, tmp: str, token: str) -> None:
    entry = Path(tmp) / "gefion"
    entry.write_text(ENTRY_POINT)
    env_server = ["--server", url, "--token", token]
    fast = [sys.executable, str(entry), "queue", *env_server]
    typer_cli = [sys.executable, "-m", "gefion.cli.main", "queue", *env_server]
    start = time.perf_counter()  # the first call catches up with the whole burst's events
    check = subprocess.run(fast, capture_output=True, text=True, check=True)
    first = time.perf_counter() - start
    rows = len(check.stdout.splitlines()) - 1
    print(f"\n2. gefion queue over {rows:,} pending jobs (whole command, {runs} runs: "
          f"median / best)")
    print(f"  first call after the submissions (server catches up with the log): "
          f"{first:.3f} s")
    baseline = time_command([sys.executable, "-c", "pass"], runs)
    import httpx

    http = httpx.Client(base_url=url, headers=AUTH)
    submit = submit_request(dict(os.environ))

    def one_more() -> None:  # the queue changed: the server renders anew
        submit(http)

    figures = {
        "python -c pass (baseline)": baseline,
        "gefion queue (fast path)": time_command(fast, runs),
        "gefion queue, a new job before each run": time_command(fast, runs, one_more),
        "gefion queue --json (fast path)": time_command([*fast, "--json"], runs),
        "gefion queue -u nobody (fast, empty)": time_command([*fast, "-u", "nobody"], runs),
        "gefion queue (Typer + Rich + httpx)": time_command(typer_cli, max(3, runs // 5)),
    }
    http.close()
    for name, (median, best) in figures.items():
        print(f"  {name:<40} {median:6.3f} s / {best:6.3f} s   "
              f"{median / baseline[0]:5.1f}x baseline")
    assert rows == jobs, f"{rows} rows for {jobs} jobs"
    print("  (the same question about an unchanged queue in the same second is answered "
          "from the server's cache; 'a new job before each run' is never)")


if __name__ == "__main__":
    main()
