"""Reader for ``itp-elasticflow``: Microsoft ITP traces from ElasticFlow (ASPLOS '23), MIT.

Ten CSVs ``cluster01.csv`` … ``cluster10.csv`` with ``job_id,submission_time,duration,
num_gpu``. ``submission_time`` is seconds from the start of collection (the same origin for
all ten clusters; the calendar time of that origin is not published, so ``Trace.origin`` is
``None``). ``duration`` is the run time in seconds on ``num_gpu`` GPUs.

Selections: ``itp-elasticflow`` merges all ten on their shared axis with the cluster name as
each job's project (69,351 jobs); ``itp-elasticflow/cluster03`` is one cluster, whose jobs
then have no project (``""``), so that the workload model can assign them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gefion.core.errors import InputError
from gefion.twin.traces._common import Columns, Selection, Table, fail, finish
from gefion.twin.traces.model import ClusterHint, Trace

NAME = "itp-elasticflow"
SUMMARY = "Microsoft ITP, 10 GPU clusters, Mar–May 2021, 69,351 jobs (MIT)"
OPTIONS: frozenset[str] = frozenset()

#: Nodes of 8 GPUs per cluster in the ElasticFlow artifact (``run_fig8b.sh``).
ARTIFACT_NODES: Mapping[str, int] = {
    "cluster01": 64, "cluster02": 64, "cluster03": 64, "cluster04": 128, "cluster05": 64,
    "cluster06": 64, "cluster07": 128, "cluster08": 128, "cluster09": 128, "cluster10": 32,
}


def selections(folder: Path) -> tuple[str, ...]:
    """The cluster names present in ``folder``."""
    return tuple(sorted(p.stem for p in folder.glob("cluster*.csv")))


def read_cluster(path: Path, project: str) -> Columns:
    """The jobs of one cluster file; ``project`` is put on every job."""
    table = Table(path)
    table.require(("job_id", "submission_time", "duration", "num_gpu"))
    ids = table.text("job_id")
    if "" in ids:
        fail(path, table.line_of(ids.index("")), "job_id", "must not be empty")
    return Columns(table.seconds("submission_time"), ids, table.seconds("duration"),
                   table.ints("num_gpu"), project=project)


def read(folder: Path, selection: str | None, select: Selection) -> Trace:
    """Load all clusters merged (``selection`` ``None``) or one cluster by name."""
    names = selections(folder)
    if selection is not None and selection not in names:
        raise InputError(f"unknown cluster {selection!r} in {NAME}; known: "
                         f"{', '.join(names)}", field="trace")
    hint: ClusterHint | None
    if selection is None:
        cols = Columns.concat([read_cluster(folder / f"{name}.csv", name) for name in names])
        hint = ClusterHint(191, 8, "Gefion reference; the merged trace offers ≈1,136 GPUs "
                                   "on average, ≈74% of 1,528")
        label, source = NAME, f"{SUMMARY}; all clusters merged, project = cluster"
    else:
        cols = read_cluster(folder / f"{selection}.csv", "")
        nodes = ARTIFACT_NODES.get(selection)
        hint = ClusterHint(nodes, 8, "size used in the ElasticFlow artifact") if nodes else None
        label, source = f"{NAME}/{selection}", f"{SUMMARY}; {selection} only"
    return finish(label, source, cols, select, cluster=hint)
