"""Job traces for the digital twin: real public traces, our canonical CSV and Slurm
``sacct`` dumps, all read into one immutable record (:class:`TraceJob` in a :class:`Trace`).

::

    load_trace("itp-elasticflow")                 # 10 ITP clusters merged, 69,351 jobs
    load_trace("philly-pollux", from_time="2017-11-06", to_time="2017-11-13",
               gpus_in={1, 2, 4, 8})              # one week, 6,360 jobs
    load_trace("runs/site.csv")                   # canonical CSV
    load_trace("sacct-2024-01.txt")               # sacct --parsable2 dump

Named traces live in :func:`traces_dir` (``$GEFION_TRACES`` or ``../shared/traces``).
See docs/traces.md for each source, its licence and the mapping of its columns.
"""

from __future__ import annotations

from gefion.twin.traces.canonical import write_canonical_csv
from gefion.twin.traces.loader import TraceInfo, list_traces, load_trace, traces_dir
from gefion.twin.traces.model import ClusterHint, Trace, TraceJob
from gefion.twin.traces.sacct import parse_slurm_time

__all__ = [
    "ClusterHint",
    "Trace",
    "TraceInfo",
    "TraceJob",
    "list_traces",
    "load_trace",
    "parse_slurm_time",
    "traces_dir",
    "write_canonical_csv",
]
