"""Reader for ``philly-pollux``: Microsoft Philly (2017) as processed by the Pollux authors.

``philly.csv`` has ``timestamp,duration,num_gpus,gpu_time,cluster`` and is NOT sorted; we
sort it. ``timestamp`` is the submit time ``YYYY-MM-DD HH:MM:SS`` with no stated time zone:
we keep it as given (a naive wall clock; ``Trace.origin`` is written the same way).
``duration`` is the sum of the job's attempts, seconds. ``cluster`` is the virtual cluster
(VC). The file has no job ids: job ``philly-<n>`` is its ``n``-th data row (line ``n + 1``
of the file), so an id is stable under any selection. ``gpu_time`` is not read.

Selections: ``philly-pollux`` (all VCs, project = VC) or ``philly-pollux/<vc>`` (one VC,
project left ``""`` for the workload model). Options (common to all readers):
``from_time``/``to_time`` (submit in ``[from, to)``) and ``gpus_in``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gefion.core.errors import InputError
from gefion.twin.traces._common import Columns, NumberedIds, Selection, Table, finish
from gefion.twin.traces.model import ClusterHint, Trace

NAME = "philly-pollux"
SUMMARY = "Microsoft Philly, Sep–Dec 2017, 82,247 jobs (CC-BY-4.0 data; Pollux artifact CSV)"
OPTIONS: frozenset[str] = frozenset()


def vc_nodes(folder: Path) -> dict[str, int]:
    """Nodes per VC from ``philly_vc.csv`` (Helios QSSF; 8 GPUs per node assumed there)."""
    path = folder / "philly_vc.csv"
    if not path.is_file():
        return {}
    table = Table(path)
    table.require(("vc", "node num"))
    return dict(zip(table.text("vc"), table.ints("node num").tolist(), strict=True))


def selections(folder: Path) -> tuple[str, ...]:
    """The VCs listed in ``philly_vc.csv`` (the trace holds 4 more tiny ones)."""
    return tuple(sorted(vc_nodes(folder)))


def read(folder: Path, selection: str | None, select: Selection) -> Trace:
    """Load all of ``philly.csv`` or the jobs of one VC."""
    table = Table(folder / "philly.csv")
    table.require(("timestamp", "duration", "num_gpus", "cluster"))
    vcs = table.text("cluster")
    cols = Columns(table.datetimes("timestamp"),
                   NumberedIds("philly-", 6, len(table)),
                   table.seconds("duration"), table.ints("num_gpus"), project=vcs)
    sizes = vc_nodes(folder)
    if selection is None:
        total = sum(sizes.values())
        hint = ClusterHint(total, 8, "sum of the VC sizes in philly_vc.csv (Helios QSSF)") \
            if total else None
        label, source = NAME, f"{SUMMARY}; all VCs, project = VC"
    else:
        if selection not in set(vcs):
            raise InputError(f"unknown VC {selection!r} in {NAME}; known: "
                             f"{', '.join(sorted(set(vcs)))}", field="trace")
        mine = np.flatnonzero(np.array(vcs) == selection)
        cols = Columns(cols.submit[mine], [cols.job_id[i] for i in mine.tolist()],
                       cols.duration[mine], cols.gpus[mine])
        nodes = sizes.get(selection)
        hint = ClusterHint(nodes, 8, "VC size in philly_vc.csv (Helios QSSF)") \
            if nodes else None
        label, source = f"{NAME}/{selection}", f"{SUMMARY}; VC {selection} only"
    return finish(label, source, cols, select, calendar_sep=" ", cluster=hint)
