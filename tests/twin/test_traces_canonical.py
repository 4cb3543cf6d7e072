"""Our canonical CSV, and the file:line:field errors every CSV reader gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from gefion.core.errors import InputError
from gefion.twin.traces import TraceJob, load_trace, write_canonical_csv

HEADER = "job_id,submit_time_s,duration_s,num_gpus"


def write(tmp_path: Path, text: str, name: str = "jobs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_file_is_sorted_and_shifted(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\nb,110,60,8\na,110,30.5,1\nc,100,0,0\n")
    trace = load_trace(str(path))
    assert trace.name == "jobs"
    assert trace.shift_s == 100.0
    assert trace.jobs == (
        TraceJob("c", 0.0, 0.0, 0), TraceJob("a", 10.0, 30.5, 1), TraceJob("b", 10.0, 60.0, 8))


def test_optional_columns_any_order_and_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path, "qos,num_gpus,job_id,user,time_limit_s,duration_s,project,"
                 "submit_time_s\nhigh,8,j1,ann,3600,1800,p1,0\n,1,j2,,,5,,2.25\n")
    trace = load_trace(path)
    assert trace.jobs == (TraceJob("j1", 0.0, 1800.0, 8, "p1", "ann", 3600, "high"),
                          TraceJob("j2", 2.25, 5.0, 1))
    again = load_trace(write_canonical_csv(trace, tmp_path / "again.csv"))
    assert again.jobs == trace.jobs


@pytest.mark.parametrize(("body", "expected"), [
    ("j1,0,10,x\n", "jobs.csv:2: field 'num_gpus': not an integer: 'x'"),
    ("j1,0,10,1\nj2,0,-5,1\n", "jobs.csv:3: field 'duration_s': must be a finite number >= 0: "
                               "'-5'"),
    ("j1,0,10,1\n\n\nj2,soon,5,1\n", "jobs.csv:5: field 'submit_time_s': not a number: 'soon'"),
    ("j1,0,10,1\nj1,3,5,1\n", "jobs.csv:3: field 'job_id': duplicate 'j1' (first on line 2)"),
    ("j1,0,10,1\nj2,0,10\n", "jobs.csv:3: expected 4 fields, got 3"),
    ("j1,0,nan,1\n", "jobs.csv:2: field 'duration_s': must be a finite number >= 0: 'nan'"),
    (",0,1,1\n", "jobs.csv:2: field 'job_id': must not be empty"),
])
def test_malformed_rows_name_file_line_and_field(tmp_path: Path, body: str,
                                                 expected: str) -> None:
    path = write(tmp_path, f"{HEADER}\n{body}")
    with pytest.raises(InputError) as err:
        load_trace(path)
    assert str(err.value) == f"{path.parent}/{expected}"


def test_bad_time_limit(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER},time_limit_s\nj1,0,1,1,60\nj2,0,1,1,\nj3,0,1,1,0\n")
    with pytest.raises(InputError, match=r"jobs.csv:4: field 'time_limit_s': must be >= 1"):
        load_trace(path)


def test_quoted_newline_counts_lines_as_a_person_does(tmp_path: Path) -> None:
    path = write(tmp_path, f'{HEADER},project\nj1,0,1,1,"two\nlines"\nj2,0,1,z,p\n')
    with pytest.raises(InputError, match=r"jobs.csv:4: field 'num_gpus'"):
        load_trace(path)


def test_unknown_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER},colour\nj1,0,1,1,red\n")
    with pytest.raises(InputError) as err:
        load_trace(path)
    assert (err.value.field, err.value.line) == ("colour", 1)


def test_duplicate_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER},num_gpus\nj1,0,1,1,2\n")
    with pytest.raises(InputError, match=r"jobs\.csv:1: field 'num_gpus': column appears twice"):
        load_trace(path)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "job_id,submit_time_s,duration_s\nj1,0,1\n")
    with pytest.raises(InputError) as err:
        load_trace(path)
    assert (err.value.field, err.value.line) == ("num_gpus", 1)


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="header"):
        load_trace(write(tmp_path, ""))
    empty = load_trace(write(tmp_path, f"{HEADER}\n"))
    assert (len(empty), empty.shift_s, empty.origin, empty.span_s) == (0, 0.0, None, 0.0)


def test_public_trace_errors_carry_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "itp-elasticflow"
    folder.mkdir()
    rows = [f"id{i},{i},700,1" for i in range(15)] + ["id15,15,700,x"]
    (folder / "cluster03.csv").write_text(
        "job_id,submission_time,duration,num_gpu\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as err:
        load_trace("itp-elasticflow/cluster03", traces=tmp_path)
    assert str(err.value).endswith("cluster03.csv:17: field 'num_gpu': not an integer: 'x'")
