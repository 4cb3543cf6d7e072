"""``gefion twin run``, ``compare`` and ``sweep``: the digital twin from the shell.

The commands and their options, for Typer; what they do is in :mod:`gefion.cli.twinrun`
(``run`` entirely: :mod:`gefion.cli.fasttwin` calls it without Typer). Options are turned
into a :class:`~gefion.twin.run.RunOptions` and everything heavy (numpy, the scheduler, Rich
tables, matplotlib) is imported inside the command. Errors are the central handler's
(:mod:`gefion.cli.errors`): ``error: ...`` and exit 2. Progress goes to stderr, and only
when stderr is a terminal; results go to stdout, or to the ``--json`` file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gefion.cli.twinrun import (
    check_outputs,
    check_setup,
    notes_console,
    options_of,
    progress_bar,
    run_command,
    tenancy_note,
    write_json,
)

if TYPE_CHECKING:
    from gefion.twin.compare import CompareRun
    from gefion.twin.sensitive import SensitiveCost
    from gefion.twin.sweep import SweepRun

twin_app = typer.Typer(
    help="The digital twin: replay job traces through the scheduler core on a virtual clock.",
    no_args_is_help=True,
)

# -- options shared by run, compare and sweep ----------------------------------------------------

Trace = Annotated[str, typer.Option(
    "--trace", metavar="NAME|PATH", show_default=False,
    help="A trace folder name (itp-elasticflow, itp-elasticflow/cluster03, philly-pollux), "
         "or the path of a canonical CSV or a sacct --parsable2 dump.")]
ClusterOpt = Annotated[str, typer.Option(
    "--cluster", metavar="PRESET|FILE",
    help="gefion, superpod:N, synthetic:NODESxGPUS, or a topology file.")]
Seed = Annotated[int, typer.Option("--seed", metavar="N",
                                   help="Seed of the workload model and the engine.")]
From = Annotated[str | None, typer.Option(
    "--from", metavar="S|DATETIME", show_default=False,
    help="Keep jobs submitted from here: seconds on the trace's axis, or a datetime "
         "('2017-11-06 00:00') for traces with calendar times.")]
To = Annotated[str | None, typer.Option(
    "--to", metavar="S|DATETIME", show_default=False,
    help="Keep jobs submitted before here (same forms as --from).")]
Gpus = Annotated[str | None, typer.Option(
    "--gpus", metavar="1,2,4,8", show_default=False,
    help="Keep only jobs of these GPU counts.")]
Traces = Annotated[Path | None, typer.Option(
    "--traces", metavar="DIR", show_default=False,
    help="Folder of the named traces (default: $GEFION_TRACES, else ../shared/traces).")]
Depth = Annotated[str | None, typer.Option(
    "--depth", metavar="N", show_default=False,
    help="Reservation depth of the backfill: 0 = none, 1 = EASY, N jobs ahead, "
         "'unlimited' = conservative.")]
JsonOut = Annotated[Path | None, typer.Option(
    "--json", metavar="FILE", show_default=False,
    help="Write the summary as JSON to FILE ('-' for stdout, then no table).")]
Report = Annotated[Path | None, typer.Option(
    "--report", metavar="DIR", show_default=False,
    help="Write a Markdown report with PNG plots into DIR.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no notes.")]
PolicyOpt = Annotated[str, typer.Option(
    "--policy", metavar="NAME", help="fifo, fifo-backfill, las or gefion.")]
LoadOpt = Annotated[float, typer.Option(
    "--load", metavar="X", help="Load factor: divides every submit time (1.5 = 50% more "
                                "jobs per hour).")]
TenancyOpt = Annotated[Path | None, typer.Option(
    "--tenancy", metavar="FILE", show_default=False,
    help="Projects (shares, max_gpus, metered, sensitive), QOS, grants, usage and "
         "reservations for the run: the tenancy keys of a `gefion plan` file.")]
Sensitive = Annotated[str | None, typer.Option(
    "--sensitive", metavar="P1,P2", show_default=False,
    help="Mark these projects sensitive: their jobs share no node with another project's.")]


Settings = Annotated[list[str] | None, typer.Option(
    "--set", metavar="NAME=VALUE", show_default=False,
    help="A policy parameter, repeatable: weights.starve_after_s=259200, "
         "weights.fairshare=0, placement=first-fit (values in JSON; seconds; null).")]


# -- gefion twin run ---------------------------------------------------------------------------

@twin_app.command("run")
def run(
    trace: Trace,
    cluster: ClusterOpt = "gefion",
    policy: PolicyOpt = "gefion",
    load: LoadOpt = 1.0,
    seed: Seed = 0,
    from_: From = None,
    to: To = None,
    gpus: Gpus = None,
    traces: Traces = None,
    depth: Depth = None,
    json_out: JsonOut = None,
    report: Report = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Check the scheduler's invariants after every event (slower).")]
        = False,
    tenancy: TenancyOpt = None,
    sensitive: Sensitive = None,
    settings: Settings = None,
    quiet: Quiet = False,
) -> None:
    """Replay a trace through one policy and summarise it (JCT, waits, allocation, energy)."""
    run_command(trace=trace, cluster=cluster, policy=policy, load=load, seed=seed, from_=from_,
                to=to, gpus=gpus, traces=traces, depth=depth, json_out=json_out, report=report,
                check=check, tenancy=tenancy, sensitive=sensitive, settings=settings,
                quiet=quiet)


# -- gefion twin compare -----------------------------------------------------------------------

Policies = Annotated[str, typer.Option(
    "--policies", metavar="A,B,C", show_default=False,
    help="Policies to compare, comma-separated (fifo, fifo-backfill, las, gefion).")]
Loads = Annotated[str, typer.Option(
    "--loads", metavar="X,Y", help="Load factors, comma-separated.")]


@twin_app.command("compare")
def compare(
    trace: Trace,
    policies: Policies,
    loads: Loads = "1.0",
    cluster: ClusterOpt = "gefion",
    seed: Seed = 0,
    from_: From = None,
    to: To = None,
    gpus: Gpus = None,
    traces: Traces = None,
    depth: Depth = None,
    json_out: JsonOut = None,
    report: Report = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", metavar="N", min=1, show_default=False,
        help="Processes to run at once (default: one per grid cell, at most the CPUs).")]
        = None,
    tenancy: TenancyOpt = None,
    sensitive: Sensitive = None,
    settings: Settings = None,
    quiet: Quiet = False,
) -> None:
    """Run several policies (and loads) side by side in parallel: one table, one plot."""
    from gefion.twin.compare import make_grid, parse_loads, run_grid
    from gefion.twin.run import parse_list

    load_list = parse_loads(loads)
    check_outputs(json_out, report)
    base = options_of(trace, cluster, parse_list(policies, "policies")[0], load_list[0], seed,
                    from_, to, gpus, traces, depth, tenancy=tenancy, sensitive=sensitive,
                    settings=settings)
    check_setup(base)  # a bad --cluster or --tenancy fails here, once, not in every worker
    cells = make_grid(base, parse_list(policies, "policies"), load_list)
    with progress_bar(quiet) as bar:
        task = bar.add_task(f"{len(cells)} runs of {base.trace}", total=len(cells))
        runs = run_grid(cells, workers=workers, on_done=lambda _: bar.advance(task))
    from gefion.twin.compare import compare_json, write_compare_report

    notes = notes_console(quiet)
    tenancy_note(runs[0].summary, notes)
    if json_out is not None:
        write_json(compare_json(runs), json_out, notes)
    if report is not None:
        paths = write_compare_report(runs, report)
        if notes:
            notes.print(f"wrote {paths[0]} and {paths[1]}", markup=False, highlight=False)
    if json_out is None or str(json_out) != "-":
        _print_compare(runs)


def _print_compare(runs: list[CompareRun], traces: list[str] | None = None) -> None:
    """The compare table on stdout; ``traces`` (one label per run) adds a trace column."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from gefion.twin.compare import table_rows

    first = runs[0].options
    rows = table_rows(runs, counts=False, traces=traces)
    # Headers in short lines, so that the table fits 80 columns without cropping a cell.
    headers: tuple[str, ...] = ("policy", "load", "jobs", "avg\nJCT", "p99\nwait",
                                "p99 wait\n≥64 GPUs", "alloc.", "pre-\nempt.", "energy\nkWh")
    what = first.trace
    if traces is not None:
        headers = ("trace", *headers)
        names = list(dict.fromkeys(traces))
        what = names[0] if len(names) == 1 else f"{len(names)} traces"
    table = Table(title=Text(f"{what} on {first.cluster} · seed {first.seed}"),
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 1, 0, 0))
    for k, header in enumerate(headers):
        table.add_column(header, justify="left" if k == 0 else "right", no_wrap=True)
    if traces is not None:
        # The trace on the first row of its group only. The one column that may wrap: on a
        # narrow terminal the name folds, and no figure is cropped.
        table.columns[0].no_wrap = False
        table.columns[0].overflow = "fold"
    for k, row in enumerate(rows):
        last = traces is not None and (k + 1 == len(rows) or traces[k + 1] != traces[k])
        if traces is not None and k and traces[k - 1] == traces[k]:
            row = ("", *row[1:])
        table.add_row(*(Text(cell) for cell in row), end_section=last)
    Console().print(table)


# -- gefion twin sensitive-cost ----------------------------------------------------------------

@twin_app.command("sensitive-cost")
def sensitive_cost(
    trace: Trace,
    sensitive: Annotated[str, typer.Option(
        "--sensitive", metavar="P1,P2", show_default=False,
        help="The projects whose sensitive flag is measured.")],
    cluster: ClusterOpt = "gefion",
    policy: PolicyOpt = "gefion",
    load: LoadOpt = 1.0,
    seed: Seed = 0,
    from_: From = None,
    to: To = None,
    gpus: Gpus = None,
    traces: Traces = None,
    depth: Depth = None,
    tenancy: TenancyOpt = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", metavar="FILE", show_default=False,
        help="Write the cost rows and both summaries as JSON to FILE ('-' for stdout, then "
             "no table).")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", metavar="N", min=1, max=2, help="1: run the two variants one after "
                                                     "the other.")] = 2,
    quiet: Quiet = False,
) -> None:
    """What marking projects sensitive costs: the same run without and with --sensitive."""
    options = options_of(trace, cluster, policy, load, seed, from_, to, gpus, traces, depth,
                       tenancy=tenancy, sensitive=sensitive)
    check_outputs(json_out, None)
    check_setup(options)
    from gefion.twin.sensitive import sensitive_cost as measure

    with progress_bar(quiet) as bar:
        bar.add_task(f"2 runs of {options.trace}", total=None)
        cost = measure(options, workers=workers)
    notes = notes_console(quiet)
    tenancy_note(cost.sensitive.summary, notes)
    if json_out is not None:
        write_json(cost.to_json(), json_out, notes)
    if json_out is None or str(json_out) != "-":
        _print_cost(cost)


def _print_cost(cost: SensitiveCost) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from gefion.twin.sensitive import cost_rows, job_counts

    o = cost.sensitive.options
    mine, others = job_counts(cost)
    table = Table(title=Text(f"{o.trace} on {o.cluster} · policy {o.policy} · seed {o.seed} · "
                             f"sensitive {', '.join(cost.projects)} ({mine:,} jobs; "
                             f"{others:,} others)"),
                  title_justify="left", box=box.SIMPLE_HEAD)
    for k, header in enumerate(("metric", "without", "with", "change")):
        table.add_column(header, justify="left" if k == 0 else "right")
    for row in cost_rows(cost):
        table.add_row(*(Text(cell) for cell in row))
    Console().print(table)


# -- gefion twin sweep -------------------------------------------------------------------------

@twin_app.command("sweep")
def sweep(
    traces_list: Annotated[str, typer.Option(
        "--traces", metavar="T1,T2", show_default=False,
        help="Traces to replay, comma-separated: names (itp-elasticflow/cluster10, "
             "philly-pollux) or paths of canonical CSVs or sacct dumps.")],
    policies: Policies,
    loads: Loads = "1.0",
    cluster: ClusterOpt = "gefion",
    seed: Seed = 0,
    from_: From = None,
    to: To = None,
    gpus: Gpus = None,
    traces_dir: Annotated[Path | None, typer.Option(
        "--traces-dir", metavar="DIR", show_default=False,
        help="Folder of the named traces (default: $GEFION_TRACES, else ../shared/traces); "
             "every Ray node must see it at this path.")] = None,
    depth: Depth = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", metavar="HOST:PORT", show_default=False,
        help="Run on this Ray cluster (from one of its nodes; ray://HOST:PORT for Ray "
             "Client). Default: start a local Ray on this machine's cores, stop it after.")]
        = None,
    json_out: JsonOut = None,
    report: Report = None,
    settings: Settings = None,
    quiet: Quiet = False,
) -> None:
    """Run policies × loads × traces as Ray tasks (local or a cluster): one table, one plot.

    Each run gives the summary `gefion twin run` gives for the same options.
    """
    from gefion.twin.compare import parse_loads
    from gefion.twin.run import make_cluster, parse_list
    from gefion.twin.sweep import check_ray_address, make_sweep

    trace_list = parse_list(traces_list, "traces")
    policy_list = parse_list(policies, "policies")
    load_list = parse_loads(loads)
    check_outputs(json_out, report)
    base = options_of(trace_list[0], cluster, policy_list[0], load_list[0], seed, from_, to,
                    gpus, traces_dir, depth, settings=settings)
    make_cluster(base)  # a bad --cluster fails here, once, not in every task
    cells = make_sweep(base, trace_list, policy_list, load_list)
    address = None if ray_address is None else check_ray_address(ray_address)
    if address is None:
        _private_ray_token()
    from gefion.twin.sweep import run_sweep

    with progress_bar(quiet) as bar:
        task = bar.add_task("starting Ray" if address is None else f"connecting to {address}",
                            total=len(cells))

        def on_ready(nodes: int) -> None:
            bar.update(task, description=f"{len(cells)} runs on {nodes} Ray "
                                         f"node{'' if nodes == 1 else 's'}")

        runs = run_sweep(cells, address=address, on_ready=on_ready,
                         on_done=lambda _: bar.advance(task))
    from gefion.twin.sweep import sweep_json, write_sweep_report

    notes = notes_console(quiet)
    if json_out is not None:
        write_json(sweep_json(runs), json_out, notes)
    if report is not None:
        paths = write_sweep_report(runs, report)
        if notes:
            notes.print(f"wrote {paths[0]} and {paths[1]}", markup=False, highlight=False)
    if json_out is None or str(json_out) != "-":
        _print_sweep(runs)


def _private_ray_token() -> None:
    """Token authentication for the local Ray, with a token of this run's own.

    Ray (2.5x) turns token authentication on for a local ``ray.init()`` and, without a
    token, writes one to ``~/.ray/auth_token`` — which then silently turns it on for every
    later ``ray start --head`` of this user, whose workers cannot join unless told. A token
    in this process's environment (Ray's processes inherit it) protects the local Ray the
    same way and leaves nothing behind. Set before Ray is imported, which reads it once;
    a user's own ``RAY_AUTH_*`` settings win.
    """
    import os
    import secrets

    if not any(os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
                                                 "RAY_AUTH_TOKEN_PATH")):
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))


def _print_sweep(runs: list[SweepRun]) -> None:
    _print_compare([run.run for run in runs], [run.trace for run in runs])
