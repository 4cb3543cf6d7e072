"""Importer for Slurm accounting dumps: ``sacct --parsable2`` (``|``-separated, header line).

Suggested export::

    sacct -a -X --parsable2 -S 2024-01-01 -E 2024-02-01 \\
      --format=JobID,Account,User,QOS,State,Submit,Start,End,ElapsedRaw,Timelimit,NNodes,AllocTRES,ReqTRES

Mapping (column → TraceJob):

- ``JobID`` → ``job_id``. Steps (``123.batch``, ``123.0``, ``123.extern``) are skipped;
  array tasks (``123_4``) and heterogeneous components (``123+0``) are jobs. If a JobID
  repeats (``sacct --duplicates``) the last record wins.
- ``Submit`` → ``submit_s``; ISO ``YYYY-MM-DDTHH:MM:SS`` in the Slurm host's local time,
  kept as a naive wall clock (``Trace.origin`` is written the same way).
- ``ElapsedRaw`` (seconds), else ``Elapsed`` (``[D-]HH:MM:SS``), else ``End − Start`` →
  ``duration_s``. A TIMEOUT job's duration is its elapsed time (about its limit).
- ``Timelimit`` (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``;
  ``UNLIMITED``/``Partition_Limit`` → none), else ``TimelimitRaw`` (minutes) → ``time_limit_s``.
- GPUs from the first non-empty of ``AllocTRES``, ``ReqTRES`` (job totals: ``gres/gpu=8``,
  else the sum of typed ``gres/gpu:h100=8``), ``AllocGRES``, ``ReqGRES`` (per node, the old
  format ``gpu:h100:8``: multiplied by ``NNodes``).
- ``Account`` → ``project``, ``User`` → ``user``, ``QOS`` → ``qos``.

Dropped and counted in ``Trace.dropped``: jobs that never started (``PENDING``, ``Start``
``Unknown``/``None``, or an empty ``AllocTRES`` with zero elapsed time: cancelled while
pending), jobs not finished (``RUNNING`` etc., or ``End`` unknown) — their true runtime is
not known — and, unless ``keep_cpu=True``, jobs with 0 GPUs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from gefion.twin.traces._common import Columns, Selection, fail, finish, naive_seconds
from gefion.twin.traces.model import Trace

OPTIONS: frozenset[str] = frozenset()
#: (submit s, job_id, duration s, gpus, project, user, time_limit_s, qos)
_Row = tuple[float, str, float, int, str, str, int | None, str]
_UNKNOWN = frozenset({"", "Unknown", "None", "N/A"})
_NO_LIMIT = frozenset({"", "UNLIMITED", "PARTITION_LIMIT", "INFINITE", "NONE"})
_ACTIVE = frozenset({"RUNNING", "SUSPENDED", "REQUEUED", "RESIZING", "CONFIGURING",
                     "COMPLETING", "STOPPED", "SIGNALING", "STAGE_OUT", "REQUEUE_HOLD",
                     "REQUEUE_FED", "SPECIAL_EXIT"})
_GPU_COLUMNS = ("AllocTRES", "ReqTRES", "AllocGRES", "ReqGRES")


def parse_slurm_time(text: str) -> int | None:
    """Seconds in a Slurm time string; ``None`` for no limit. Raises ``ValueError``.

    ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``; ``UNLIMITED``,
    ``Partition_Limit`` and empty mean none.
    """
    value = text.strip()
    if value.upper() in _NO_LIMIT:
        return None
    days_text, dash, rest = value.rpartition("-")
    parts = rest.split(":")
    numbers = [days_text, *parts] if dash else parts
    if len(parts) > 3 or not all(p.isascii() and p.isdigit() for p in numbers):
        raise ValueError(f"not a Slurm time: {text!r}")
    fields = [int(p) for p in parts]
    if dash:  # D-HH, D-HH:MM, D-HH:MM:SS
        fields += [0] * (3 - len(fields))
        hours, minutes, seconds = fields
        return ((int(days_text) * 24 + hours) * 60 + minutes) * 60 + seconds
    if len(fields) == 1:  # MM
        return fields[0] * 60
    if len(fields) == 2:  # MM:SS
        return fields[0] * 60 + fields[1]
    return (fields[0] * 60 + fields[1]) * 60 + fields[2]


def gpus_from_tres(text: str) -> int:
    """Total GPUs in a TRES string (``cpu=64,gres/gpu=8,gres/gpu:h100=8,node=1`` → 8)."""
    generic: int | None = None
    typed = 0
    for item in text.split(","):
        key, _, count = item.strip().partition("=")
        if key == "gres/gpu":
            generic = _count(count)
        elif key.startswith("gres/gpu:"):
            typed += _count(count)
    return typed if generic is None else generic


def gpus_from_gres(text: str) -> int:
    """GPUs per node in an old-style GRES string (``gpu:h100:8(IDX:0-7)`` → 8)."""
    total = 0
    for item in text.split(","):
        name = item.split("(", 1)[0].strip()
        if name == "gpu" or name.startswith("gpu:"):
            last = name.rsplit(":", 1)[-1]
            total += _count(last) if last.isdigit() else 1
    return total


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"not a GPU count: {text!r}")
    return int(text)


def is_sacct(path: Path) -> bool:
    """Whether ``path`` looks like a ``sacct --parsable[2]`` dump (``|`` in line 1)."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            return "|" in handle.readline()
    except OSError:
        return False


def read(path: Path, select: Selection) -> Trace:
    """Load a ``sacct --parsable2`` (or ``--parsable``) dump."""
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        fail(path, None, None, f"cannot read: {exc}")
    header = [cell.strip() for cell in lines[0].rstrip("\r").split("|")]
    trailing = header[-1] == "" and len(header) > 1  # --parsable ends every line with |
    if trailing:
        header.pop()
    col = {name: i for i, name in enumerate(header)}
    for name in ("JobID", "Submit"):
        if name not in col:
            fail(path, 1, name, "required column missing (export with sacct --parsable2 "
                 "and a header line)")
    if not {"ElapsedRaw", "Elapsed"} & col.keys() and not {"Start", "End"} <= col.keys():
        fail(path, 1, "ElapsedRaw", "required column missing: one of ElapsedRaw, Elapsed "
             "or Start and End")
    if not col.keys() & set(_GPU_COLUMNS):
        fail(path, 1, "AllocTRES", f"required column missing: one of {', '.join(_GPU_COLUMNS)}")
    width = len(header)
    dropped: Counter[str] = Counter()
    records: dict[str, _Row] = {}
    for line, raw in enumerate(lines[1:], start=2):
        text = raw.rstrip("\r")
        if not text.strip():
            continue
        cells = text.split("|")
        if trailing and cells[-1] == "":
            cells.pop()
        if len(cells) != width:
            fail(path, line, None, f"expected {width} '|'-separated fields, got {len(cells)}")
        row = dict(zip(header, cells, strict=True))
        job_id = row["JobID"].strip()
        if not job_id:
            fail(path, line, "JobID", "must not be empty")
        if "." in job_id:
            continue  # a job step; the job's own line carries the allocation
        reason = _skip_reason(row)
        if reason:
            dropped[reason] += 1
            continue
        rec = _record(row, job_id, path, line)
        if rec is None:
            dropped["never started (cancelled while pending)"] += 1
            continue
        if job_id in records:
            dropped["duplicate JobID (earlier record)"] += 1
        records[job_id] = rec
    return finish(path.stem, f"sacct dump {path}", Columns.from_rows(records.values()), select,
                  calendar_sep="T", keep_cpu=False, dropped=dropped)


def _skip_reason(row: dict[str, str]) -> str | None:
    state = row.get("State", "").split(" ", 1)[0].strip().upper()
    if state == "PENDING":
        return "never started (PENDING)"
    if row["Submit"].strip() in _UNKNOWN:
        return "no submit time"
    if "Start" in row and row["Start"].strip() in _UNKNOWN:
        return "never started (no Start)"
    if state in _ACTIVE or ("End" in row and row["End"].strip() in _UNKNOWN):
        return f"not finished ({state or 'End unknown'})"
    return None


def _record(row: dict[str, str], job_id: str, path: Path, line: int) -> _Row | None:
    """The job of one sacct line; ``None`` for a job that never held resources."""
    submit = _when(row, "Submit", path, line)
    duration = _duration(row, path, line)
    if "AllocTRES" in row and not row["AllocTRES"].strip() and duration == 0:
        return None
    return (submit, job_id, duration, _gpus(row, path, line),
            row.get("Account", "").strip(), row.get("User", "").strip(),
            _limit(row, path, line), row.get("QOS", "").strip())


def _when(row: dict[str, str], name: str, path: Path, line: int) -> float:
    try:
        return naive_seconds(row.get(name, ""))
    except ValueError as exc:
        fail(path, line, name, str(exc))


def _duration(row: dict[str, str], path: Path, line: int) -> float:
    for name in ("ElapsedRaw", "Elapsed"):
        text = row.get(name, "").strip()
        if text:
            try:
                seconds = int(text) if name == "ElapsedRaw" else parse_slurm_time(text)
            except ValueError:
                fail(path, line, name, f"not an elapsed time: {text!r}")
            if seconds is None or seconds < 0:
                fail(path, line, name, f"not an elapsed time: {text!r}")
            return float(seconds)
    start = _when(row, "Start", path, line)
    end = _when(row, "End", path, line)
    if end < start:
        fail(path, line, "End", f"before Start: {row['End']!r} < {row['Start']!r}")
    return end - start


def _limit(row: dict[str, str], path: Path, line: int) -> int | None:
    text = row.get("Timelimit", "").strip()
    name, scale = "Timelimit", 1
    if not text and row.get("TimelimitRaw", "").strip():
        name, text, scale = "TimelimitRaw", row["TimelimitRaw"].strip(), 60
    try:
        seconds = parse_slurm_time(text) if scale == 1 else (
            None if text.upper() in _NO_LIMIT else int(text) * 60)
    except ValueError:
        fail(path, line, name, f"not a Slurm time limit: {text!r}")
    return seconds or None  # a limit of 0 means "no limit" in Slurm


def _gpus(row: dict[str, str], path: Path, line: int) -> int:
    for name in _GPU_COLUMNS:
        text = row.get(name, "").strip()
        if not text:
            continue
        try:
            if name.endswith("TRES"):
                return gpus_from_tres(text)
            per_node = gpus_from_gres(text)
        except ValueError as exc:
            fail(path, line, name, str(exc))
        nodes_text = row.get("NNodes", "").strip() or "1"
        if not nodes_text.isdigit():
            fail(path, line, "NNodes", f"not an integer: {nodes_text!r}")
        return per_node * max(1, int(nodes_text))
    return 0
