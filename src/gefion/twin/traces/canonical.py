"""Gefion's own trace format: a CSV with a header line.

Required columns ``job_id,submit_time_s,duration_s,num_gpus``; optional
``project,user,time_limit_s,qos``; any other column is an error that names it. Columns may
come in any order. Units: ``submit_time_s`` and ``duration_s`` are seconds (decimals allowed;
``duration_s`` is the true runtime), ``time_limit_s`` whole seconds ``>= 1`` or empty for
"none requested". Job ids must be unique. Times may start anywhere: on load they are shifted
so that the first submit is 0. :func:`write_canonical_csv` writes a :class:`Trace` back.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from gefion.twin.traces._common import Columns, Selection, Table, fail, finish
from gefion.twin.traces.model import Trace

REQUIRED = ("job_id", "submit_time_s", "duration_s", "num_gpus")
OPTIONAL = ("project", "user", "time_limit_s", "qos")
OPTIONS: frozenset[str] = frozenset()


def read(path: Path, select: Selection) -> Trace:
    """Load a canonical CSV (jobs with 0 GPUs are kept unless ``keep_cpu=False``)."""
    table = Table(path)
    table.require(REQUIRED, OPTIONAL, strict=True)
    ids = table.text("job_id")
    if len(set(ids)) != len(ids) or "" in ids:
        first: dict[str, int] = {}
        for k, job_id in enumerate(ids):
            if not job_id:
                fail(path, table.line_of(k), "job_id", "must not be empty")
            if job_id in first:
                fail(path, table.line_of(k), "job_id",
                     f"duplicate {job_id!r} (first on line {table.line_of(first[job_id])})")
            first[job_id] = k
    limits: list[int | None] | None = None
    if "time_limit_s" in table.header:
        cells = table.text("time_limit_s")
        given = np.array([k for k, cell in enumerate(cells) if cell], dtype=np.int64)
        values = table.ints("time_limit_s", minimum=1, rows=given).tolist()
        limits = [None] * len(cells)
        for k, value in zip(given.tolist(), values, strict=True):
            limits[k] = value
    cols = Columns(
        table.seconds("submit_time_s", signed=True), ids, table.seconds("duration_s"),
        table.ints("num_gpus"),
        project=table.text("project") if "project" in table.header else "",
        user=table.text("user") if "user" in table.header else "",
        time_limit_s=limits,
        qos=table.text("qos") if "qos" in table.header else "",
    )
    return finish(path.stem, f"canonical CSV {path}", cols, select)


def _number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def write_canonical_csv(trace: Trace, path: str | Path) -> Path:
    """Write ``trace`` as a canonical CSV (all columns); return the path written."""
    target = Path(path)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(REQUIRED + OPTIONAL)
        for job in trace.jobs:
            writer.writerow((job.job_id, _number(job.submit_s), _number(job.duration_s),
                             job.gpus, job.project, job.user,
                             "" if job.time_limit_s is None else job.time_limit_s, job.qos))
    return target
