"""Policies × loads × traces on Ray: the engine of ``gefion twin sweep``.

::

    cells = make_sweep(RunOptions(trace="small.csv", cluster="synthetic:2x8"),
                       traces=["itp-elasticflow/cluster10", "small.csv"],
                       policies=["fifo-backfill", "gefion"], loads=[1.0, 1.5])
    runs = run_sweep(cells)                           # a local Ray, started and stopped here
    runs = run_sweep(cells, address="10.0.0.1:6379")  # or a Ray cluster that is running
    write_compare_report([r.run for r in runs], "out/", traces=[r.trace for r in runs],
                         stem="sweep")

Each cell is one Ray task that calls :func:`~gefion.twin.compare.run_cell` — that is
:func:`~gefion.twin.run.run_twin` on the cell's options, the function ``gefion twin run``
calls — and returns the summary and the large-job figures. Simulations are deterministic,
so a sweep gives exactly the summaries of its runs alone, on whichever node each ran; only
``SweepRun.node_id`` (which Ray node ran it) changes from one sweep to the next.

Paths are settled here, in the driver: a trace given as a file path is made absolute and
the traces folder is resolved (``--traces-dir``, ``$GEFION_TRACES``, the default beside the
checkout) and passed to every task explicitly. A task on another node — a worker started
by ``ray start``, with its own working directory and environment — then reads the same
files, which must be at the same path on every node (a shared file system).

Every name (policy, trace, cluster) is checked before Ray starts. Ray itself is imported
only inside the functions that use it, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gefion.core.errors import GefionError, InputError, PolicyError
from gefion.executor.ray.address import CONNECT_TIMEOUT_S as CONNECT_TIMEOUT_S
from gefion.executor.ray.address import check_ray_address as check_ray_address
from gefion.twin.compare import CompareRun, make_grid, run_cell
from gefion.twin.run import RunOptions


@dataclass(frozen=True, slots=True)
class SweepCell:
    """One simulation of the sweep: the trace as the user named it (the label in tables and
    JSON) and the options its task runs (trace path absolute, traces folder explicit)."""

    trace: str
    options: RunOptions


@dataclass(frozen=True, slots=True)
class SweepRun:
    """A finished cell: its compare figures, and the id of the Ray node that ran it."""

    trace: str
    run: CompareRun
    node_id: str

    def to_json(self) -> dict[str, Any]:
        """Compare's cell (``policy``, ``load``, ``summary``, ``large_jobs``) plus ``trace``."""
        return {"trace": self.trace, **self.run.to_json()}


# -- the grid ----------------------------------------------------------------------------------

def task_trace(ref: str, traces: str | None) -> str:
    """The trace reference a task on any node can read: a file (or trace folder) given as a
    path becomes absolute; a name must be a trace folder under the traces directory.
    Raises :class:`InputError` (field ``traces``) without reading the trace."""
    from gefion.twin.traces import list_traces, load_trace, traces_dir

    base = traces_dir(traces)
    known = list_traces(base)
    path = Path(ref).expanduser()
    if path.is_file() or (path.is_dir() and path.name in {info.name for info in known}):
        # absolute(), not resolve(): a symlink keeps its name, and the trace its label
        return str(path.absolute())
    name = ref.strip().strip("/").partition("/")[0]
    if any(info.name == name and info.path is not None for info in known):
        return ref  # a sub-selection that does not exist is the reader's error, in the task
    try:  # not a trace: the loader's own error (it fails before reading anything)
        load_trace(ref, traces=base)
    except InputError as exc:
        raise InputError(exc.message, field="traces", source=exc.source,
                         line=exc.line) from None
    raise InputError(f"no trace {ref!r}", field="traces")  # pragma: no cover - unreachable


def make_sweep(base: RunOptions, traces: Iterable[str], policies: Iterable[str],
               loads: Iterable[float]) -> list[SweepCell]:
    """Trace-major, then compare's policy-major grid; every policy and trace name is
    checked before anything runs."""
    from gefion.twin.traces import traces_dir

    folder = str(traces_dir(base.traces).absolute())
    refs = [(label, task_trace(label, base.traces)) for label in traces]
    try:
        grid = make_grid(base, policies, loads)
    except PolicyError as exc:
        raise InputError(str(exc), field="policies") from None
    return [SweepCell(label, cell.with_(trace=ref, traces=folder))
            for label, ref in refs for cell in grid]


# -- running on Ray ----------------------------------------------------------------------------

def sweep_task(options: RunOptions) -> tuple[CompareRun, str]:
    """The body of one Ray task (top-level, so workers import it by name): the cell's run
    and the id of the node it ran on."""
    import ray

    return run_cell(options), ray.get_runtime_context().get_node_id()


def _connect(ray: Any, address: str | None, num_cpus: int | None) -> None:
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:
        # "local": never attach to a cluster found in /tmp/ray or $RAY_ADDRESS; on
        # 127.0.0.1, so a private Ray listens on no network interface.
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                 include_dashboard=False, _node_ip_address="127.0.0.1", **quiet)
        return
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError) as exc:  # no GCS there, or another Ray version
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"cannot connect to Ray at {address}: {first}",
                         field="ray-address") from None


def _alive_nodes(ray: Any) -> int:  # Any: ray.nodes() has no annotations
    return sum(1 for node in ray.nodes() if node.get("Alive"))


def _worker_nodes(ray: Any) -> list[str]:
    """Ids of the alive nodes with CPUs to run a simulation, in a stable order."""
    return sorted(str(node["NodeID"]) for node in ray.nodes()
                  if node.get("Alive") and node.get("Resources", {}).get("CPU"))


def run_sweep(cells: Sequence[SweepCell], *, address: str | None = None,
              num_cpus: int | None = None, on_ready: Callable[[int], None] | None = None,
              on_done: Callable[[SweepRun], None] | None = None) -> list[SweepRun]:
    """Run every cell as a Ray task; results come back in grid order.

    ``address``: a running cluster (see :func:`check_ray_address`); ``None`` starts a local
    Ray with ``num_cpus`` (default: this machine's cores) and shuts it down at the end. A
    Ray this process had already initialised is used as it is and left running.
    ``on_ready(nodes)`` hears how many Ray nodes are alive once connected; ``on_done`` hears
    each run as it finishes. One task needs one CPU; tasks are spread over the nodes. A
    task that fails on bad input (a trace's bad row, an unknown sub-selection) raises that
    :class:`~gefion.core.errors.GefionError` here, and the tasks not yet done are cancelled.
    """
    import ray
    from ray.exceptions import RayTaskError

    connected_here = not ray.is_initialized()
    if connected_here:
        _connect(ray, address, num_cpus)
    try:
        if on_ready:
            on_ready(_alive_nodes(ray))
        # Round-robin over the nodes, softly: Ray's SPREAD is best effort, and reuses a
        # leased worker for the next short task, so a grid of quick runs would stay on one
        # node. A node that leaves (or is full) hands its cells to the others.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        task = ray.remote(num_cpus=1)(sweep_task)
        nodes = _worker_nodes(ray)
        refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                    nodes[k % len(nodes)], soft=True) if nodes else "SPREAD"
                ).remote(cell.options) for k, cell in enumerate(cells)]
        index = {ref: k for k, ref in enumerate(refs)}
        results: dict[int, SweepRun] = {}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    k = index[ref]
                    run, node_id = ray.get(ref)
                    results[k] = SweepRun(cells[k].trace, run, node_id)
                    if on_done:
                        on_done(results[k])
        except BaseException:
            for ref in pending:  # one failed (or Ctrl-C): run no more
                ray.cancel(ref, force=True)
            raise
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, GefionError):
            raise cause from None
        raise
    finally:
        if connected_here:
            ray.shutdown()
    return [results[k] for k in range(len(cells))]


# -- output ------------------------------------------------------------------------------------

def sweep_json(runs: Sequence[SweepRun]) -> dict[str, Any]:
    """``{"cluster", "seed", "traces", "runs": [...], "ray": {"nodes", "node_ids"}}``;
    ``runs`` in grid order, each compare's cell plus ``trace``. ``ray`` (the nodes used, and
    each run's node, in the order of ``runs``) is the only part that differs between two
    sweeps of the same grid."""
    first = runs[0].run.options if runs else None
    node_ids = [run.node_id for run in runs]
    return {"cluster": first.cluster if first else None,
            "seed": first.seed if first else None,
            "traces": list(dict.fromkeys(run.trace for run in runs)),
            "runs": [run.to_json() for run in runs],
            "ray": {"nodes": len(set(node_ids)), "node_ids": node_ids}}


def write_sweep_report(runs: Sequence[SweepRun], out_dir: str | Path) -> list[Path]:
    """``sweep.md`` (the table, with a trace column) and ``sweep.png`` (a column of panels
    per trace) in ``out_dir`` (created)."""
    from gefion.twin.compare import write_compare_report

    return write_compare_report([run.run for run in runs], out_dir,
                                traces=[run.trace for run in runs], stem="sweep")
