"""Submission throughput of gefion.store, against per-call transactions measured in the same run.

    .venv/bin/python bench/bench_store.py            # SQLite and PostgreSQL, 1/8/64 threads
    .venv/bin/python bench/bench_store.py --quick    # fewer submissions per run
    .venv/bin/python bench/bench_store.py --durable  # SQLite with synchronous=FULL

Each run opens a fresh database (a new SQLite file; a new PostgreSQL schema, dropped
afterwards), starts T threads that each submit one job at a time — a realistic spec and an
idempotency key per call, as the REST API does — and times N submissions in all. The
baseline is the same store with ``group_commit=False`` (one transaction per call); the
figure of merit is group commit's submissions/s and its ratio to the baseline. The target
(issue #4) is ≥ 2,000 submissions/s through the API, so the store alone must do well more.
PostgreSQL comes from ``GEFION_TEST_PG`` (default: the test database of .ci/run).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from gefion.core.jobs import JobSpec
from gefion.store import NewJob, Store

PG_DEFAULT = "postgresql+psycopg://gefion:gefion@127.0.0.1:5432/gefion_test"
THREADS = (1, 8, 64)


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="gefion-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'gefion.db'}"


@contextmanager
def postgres_url(base: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, poolclass=sa.NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def postgres_reachable(base: str) -> str | None:
    engine = sa.create_engine(base, poolclass=sa.NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return None
    except sa.exc.OperationalError as e:
        return str(e.orig).strip().splitlines()[0]
    finally:
        engine.dispose()


def new_job(i: int) -> NewJob:
    spec = JobSpec(gpus=8, time_limit_s=3600, project="nlp", user="ana", name=f"train-{i}")
    return NewJob.from_spec(spec, script="/home/ana/train.sbatch", workdir="/home/ana",
                            output="slurm-%j.out", env={"OMP_NUM_THREADS": "8"})


def measure(url: str, *, threads: int, total: int, group_commit: bool, durable: bool) -> float:
    """Submissions per second of ``threads`` clients submitting ``total`` jobs in all."""
    per_thread = max(1, total // threads)
    store = Store.open(url, group_commit=group_commit, durable=durable,
                       pool_size=min(threads, 20), max_overflow=threads)
    jobs = [new_job(i) for i in range(per_thread)]
    run = uuid.uuid4().hex
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def client(t: int) -> None:
        barrier.wait()
        try:
            for i, job in enumerate(jobs):
                store.submit([job], ts=1.7e9 + i, idempotency_key=f"{run}-{t}-{i}")
        except BaseException as e:
            errors.append(e)

    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    store.close()
    if errors:
        raise errors[0]
    return per_thread * threads / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer submissions per run")
    parser.add_argument("--durable", action="store_true", help="SQLite synchronous=FULL")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args()
    total = 2_000 if args.quick else 8_000
    console = Console()
    pg = os.environ.get("GEFION_TEST_PG", PG_DEFAULT)
    backends: list[tuple[str, Callable[[], AbstractContextManager[str]]]] = []
    if not args.backend or "sqlite" in args.backend:
        backends.append(("sqlite" + (" (durable)" if args.durable else ""), sqlite_url))
    if not args.backend or "postgresql" in args.backend:
        problem = postgres_reachable(pg)
        if problem is None:
            backends.append(("postgresql", lambda: postgres_url(pg)))
        else:
            console.print(f"[yellow]PostgreSQL skipped: {problem} "
                          "(start it: pg_ctlcluster 15 main start; see .ci/run)[/]")
    load_before = os.getloadavg()[0]
    rows: list[tuple[str, ...]] = []
    for name, make_url in backends:
        for threads in THREADS:
            rates = []
            for group_commit in (False, True):
                with make_url() as url:
                    rates.append(measure(url, threads=threads, total=total,
                                         group_commit=group_commit, durable=args.durable))
            base, ours = rates
            rows.append((name, str(threads), f"{base:,.0f}", f"{ours:,.0f}",
                         f"{ours / base:.2f}×"))
            console.print(f"{name} {threads:>2} clients: per-call {base:,.0f}/s, "
                          f"group commit {ours:,.0f}/s")
    # Other work on the machine moves the absolute figures (PostgreSQL's server competes
    # for the same CPUs); the ratios, measured side by side, move much less.
    table = Table(title=f"store.submit throughput ({total:,} one-job submissions per run, "
                        f"{os.cpu_count()} CPUs, load average {load_before:.1f} → "
                        f"{os.getloadavg()[0]:.1f})")
    for col in ("backend", "clients", "per-call tx (/s)", "group commit (/s)",
                "group / per-call"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
