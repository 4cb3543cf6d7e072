"""The Slurm ``sacct --parsable2`` importer."""

from __future__ import annotations

from pathlib import Path

import pytest

from gefion.core.errors import InputError
from gefion.twin.traces import TraceJob, load_trace, parse_slurm_time
from gefion.twin.traces.sacct import gpus_from_gres, gpus_from_tres

FIXTURE = Path(__file__).parent / "fixtures" / "sacct_small.txt"


@pytest.mark.parametrize(("text", "seconds"), [
    ("30", 30 * 60),                     # MM
    ("30:15", 30 * 60 + 15),             # MM:SS
    ("02:00:00", 7200),                  # HH:MM:SS
    ("1-12", 36 * 3600),                 # D-HH
    ("1-12:30", 36 * 3600 + 1800),       # D-HH:MM
    ("2-00:00:01", 2 * 86400 + 1),       # D-HH:MM:SS
    ("UNLIMITED", None),
    ("Partition_Limit", None),
    ("", None),
])
def test_slurm_time_formats(text: str, seconds: int | None) -> None:
    assert parse_slurm_time(text) == seconds


@pytest.mark.parametrize("text", ["1:2:3:4", "abc", "-5", "1-2-3", "1.5", "1-1:2:3:4"])
def test_bad_slurm_times(text: str) -> None:
    with pytest.raises(ValueError, match="Slurm time"):
        parse_slurm_time(text)


@pytest.mark.parametrize(("tres", "gpus"), [
    ("billing=8,cpu=64,gres/gpu=8,mem=512G,node=1", 8),
    ("cpu=256,gres/gpu:h100=32,node=4", 32),
    ("gres/gpu=8,gres/gpu:h100=8", 8),  # the generic count is the total, not doubled
    ("gres/gpu:a100=2,gres/gpu:h100=4", 6),
    ("cpu=4,mem=16G,node=1", 0),
])
def test_gpus_from_tres(tres: str, gpus: int) -> None:
    assert gpus_from_tres(tres) == gpus


@pytest.mark.parametrize(("gres", "gpus"), [
    ("gpu:8", 8), ("gpu:h100:4(IDX:0-3)", 4), ("gpu", 1), ("craynetwork:1,gpu:2", 2), ("", 0),
])
def test_gpus_from_gres(gres: str, gpus: int) -> None:
    assert gpus_from_gres(gres) == gpus


def test_fixture() -> None:
    trace = load_trace(FIXTURE)
    assert trace.name == "sacct_small"
    assert trace.origin == "2024-03-01T08:00:00"
    assert trace.jobs == (
        TraceJob("1001", 0.0, 3600.0, 8, "proj-a", "alice", 7200, "normal"),
        TraceJob("1003_1", 300.0, 600.0, 1, "proj-a", "alice", 1800, "normal"),
        TraceJob("1003_2", 300.0, 42.0, 1, "proj-a", "alice", 1800, "normal"),
        TraceJob("1002", 600.0, 86430.0, 32, "proj-b", "bob", 86400, "high"),
        TraceJob("1007", 7200.0, 1800.0, 16, "proj-c", "erin", None, "low"),
    )
    assert dict(trace.dropped) == {
        "never started (PENDING)": 1,
        "never started (cancelled while pending)": 1,
        "not finished (RUNNING)": 1,
        "0 GPUs (CPU-only)": 1,
    }
    assert len(load_trace(FIXTURE, keep_cpu=True)) == 6
    window = load_trace(FIXTURE, from_time="2024-03-01T08:05:00", gpus_in=[1])
    assert [j.job_id for j in window.jobs] == ["1003_1", "1003_2"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dump.txt"
    path.write_text(text)
    return path


def test_old_gres_is_per_node_and_parsable_with_trailing_bar(tmp_path: Path) -> None:
    path = write(tmp_path, "JobID|Submit|Start|End|NNodes|AllocGRES|Account|\n"
                 "7|2024-01-01T00:00:00|2024-01-01T00:00:10|2024-01-01T01:00:10|2|"
                 "gpu:h100:4(IDX:0-3)|p|\n")
    (job,) = load_trace(path).jobs
    assert (job.job_id, job.gpus, job.duration_s, job.project, job.time_limit_s) == (
        "7", 8, 3600.0, "p", None)


def test_duplicates_keep_the_last_record(tmp_path: Path) -> None:
    path = write(tmp_path, "JobID|Submit|ElapsedRaw|AllocTRES|State\n"
                 "9|2024-01-01T00:00:00|100|gres/gpu=1|REQUEUED\n"
                 "9|2024-01-01T00:00:00|50|gres/gpu=1|NODE_FAIL\n"
                 "9|2024-01-01T00:00:00|70|gres/gpu=1|COMPLETED\n")
    trace = load_trace(path)
    assert [j.duration_s for j in trace.jobs] == [70.0]
    assert dict(trace.dropped) == {"not finished (REQUEUED)": 1,
                                   "duplicate JobID (earlier record)": 1}


@pytest.mark.parametrize(("row", "expected"), [
    ("1|2024-13-01T00:00:00|5|gres/gpu=1|1:00:00", "dump.txt:2: field 'Submit': not a datetime"),
    ("1|2024-01-01T00:00:00|x|gres/gpu=1|1:00:00", "dump.txt:2: field 'ElapsedRaw': not an "
                                                    "elapsed time: 'x'"),
    ("1|2024-01-01T00:00:00|5|gres/gpu=y|1:00:00", "dump.txt:2: field 'AllocTRES': not a GPU "
                                                    "count: 'y'"),
    ("1|2024-01-01T00:00:00|5|gres/gpu=1|soon", "dump.txt:2: field 'Timelimit': not a Slurm "
                                                 "time limit: 'soon'"),
    ("1|2024-01-01T00:00:00|5|gres/gpu=1", "dump.txt:2: expected 5 '|'-separated fields, got 4"),
])
def test_malformed_lines(tmp_path: Path, row: str, expected: str) -> None:
    path = write(tmp_path, f"JobID|Submit|ElapsedRaw|AllocTRES|Timelimit\n{row}\n")
    with pytest.raises(InputError) as err:
        load_trace(path)
    assert str(err.value).startswith(f"{path.parent}/{expected}")


def test_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_trace(write(tmp_path, "JobID|Submit|AllocTRES\n1|2024-01-01T00:00:00|gres/gpu=1\n"))
    assert (err.value.field, err.value.line) == ("ElapsedRaw", 1)
    with pytest.raises(InputError) as err:
        load_trace(write(tmp_path, "JobID|Submit|ElapsedRaw\n1|2024-01-01T00:00:00|5\n"))
    assert err.value.field == "AllocTRES"
