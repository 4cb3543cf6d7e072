"""The twin's reports: report.md, the PNG plots, the compare report, and the helpers
behind them. Results are built by hand here, so these tests need no engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gefion.twin.compare import CompareRun, compare_json, write_compare_report
from gefion.twin.report import (
    PLOTS,
    fmt_duration,
    fmt_short,
    project_rows,
    step_series,
    summary_rows,
    write_report,
)
from gefion.twin.result import JobRecord, Sample, SimResult
from gefion.twin.run import RunOptions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def job(job_id: str, project: str, gpus: int, submit_s: float, start_s: float,
        runtime_s: float) -> JobRecord:
    return JobRecord(job_id, project, f"{project}-u01", gpus, submit_s, start_s,
                     start_s + runtime_s, "COMPLETED", runtime_s, 3600 * 4, 0,
                     gpus * 700.0 * runtime_s)


def hand_result() -> SimResult:
    jobs = (job("a", "climate", 1, 0, 0, 600), job("b", "bio", 4, 10, 10, 3600),
            job("c", "climate", 16, 20, 3610, 7200), job("d", "llm", 64, 30, 10_810, 1800),
            job("e", "bio", 1, 40, 40, 60))
    samples = (Sample(0, 1, 0, 0, 0, 3000.0), Sample(10, 5, 0, 0, 0, 4000.0),
               Sample(20, 5, 1, 16, 3, 4000.0), Sample(3610, 16, 1, 64, 0, 9000.0),
               Sample(10_810, 64, 0, 0, 0, 20_000.0), Sample(12_610, 0, 0, 0, 0, 2400.0))
    return SimResult("hand", "synthetic:8x8", "fifo", 3, 1.5, 64, jobs, samples,
                     makespan_s=12_610, preemptions=0, cycles=9, events=10,
                     dropped={"needs more GPUs than the cluster has": 1})


def hand_summary() -> dict[str, Any]:
    block = {"jobs": 5, "avg_jct_s": 4000.0, "p50_jct_s": 3600.0, "p95_jct_s": 11_000.0,
             "p99_jct_s": 12_000.0, "avg_wait_s": 2000.0, "p50_wait_s": 0.0,
             "p95_wait_s": 10_000.0, "p99_wait_s": 10_700.0, "avg_bsld": 2.5,
             "makespan_s": 12_610.0, "gpu_allocation": 0.31, "fragmentation": 0.02,
             "preemptions": 0, "energy_kwh": 12.5}
    projects = {"bio": (4.02, 0.0591), "climate": (32.17, 0.4730), "idle": (0.0, 0.0),
                "llm": (32.0, 0.4679)}
    return {**block, "by_size": {"1": {**block, "jobs": 2}, "5-8": {"jobs": 0},
                                 "33-128": {**block, "jobs": 1}},
            "per_project": {name: {"gpu_hours": h, "share": u, "entitlement": 0.25,
                                   "share_over_entitlement": u / 0.25}
                            for name, (h, u) in projects.items()},
            "policy": "fifo", "trace": "hand", "cluster": "synthetic:8x8", "seed": 3,
            "load": 1.5}


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 10_000, (path, len(data))  # a real plot, not an empty canvas


# -- report.md and the plots ----------------------------------------------------------------

def test_report_writes_markdown_and_three_pngs(tmp_path: Path) -> None:
    paths = write_report(hand_result(), hand_summary(), tmp_path / "out")
    assert [p.name for p in paths] == ["report.md", *PLOTS]
    for png in paths[1:]:
        assert_png(png)
    text = paths[0].read_text()
    assert text.startswith("# Twin run: hand on synthetic:8x8, policy fifo")
    for needle in ("load factor 1.5", "1 (needs more GPUs than the cluster has)", "## Summary",
                   "| avg JCT | 4,000 s (1.1 h) |", "| GPU allocation | 31.0% |",
                   "## By job size", "| 33-128 | 1 |", "## Projects",
                   "| climate | 32.2 | 47.3% | 25.0% |", "| idle | 0.0 | 0.0% | 25.0% |",
                   "(allocation.png)",
                   "(jct_cdf.png)", "(project_share.png)"):
        assert needle in text, needle
    assert "| 5-8 |" not in text  # no row for a class without jobs


def test_report_is_byte_identical_when_written_twice(tmp_path: Path) -> None:
    first = write_report(hand_result(), hand_summary(), tmp_path / "one")
    second = write_report(hand_result(), hand_summary(), tmp_path / "two")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert b"matplotlib" not in first[1].read_bytes()  # no version stamp in the metadata


def test_report_survives_an_empty_run(tmp_path: Path) -> None:
    empty = SimResult("none", "gefion", "fifo", 0, 1.0, 1528, (), (), 0.0, 0, 0, 0, {})
    paths = write_report(empty, {"jobs": 0, "by_size": {}}, tmp_path)
    assert all(p.is_file() for p in paths)


# -- helpers ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "long", "short"), [
    (45, "45 s", "45 s"),
    (750, "750 s (12.5 min)", "12.5 min"),
    (27_733, "27,733 s (7.7 h)", "7.7 h"),
    (3 * 86_400, "259,200 s (3.0 d)", "3.0 d"),
    (None, "-", "-"),
    (float("nan"), "-", "-"),
])
def test_durations_read_well(seconds: float | None, long: str, short: str) -> None:
    assert fmt_duration(seconds) == long
    assert fmt_short(seconds) == short


def test_summary_rows_cover_the_headline_metrics() -> None:
    rows = dict(summary_rows(hand_summary()))
    assert rows["jobs"] == "5"
    assert rows["p50 / p95 / p99 wait"] == "0 s / 2.8 h / 3.0 h"
    assert rows["energy"] == "12.5 kWh"


def test_step_series_keeps_few_points_and_averages_many_exactly() -> None:
    t, v = np.array([0.0, 10.0]), np.array([1.0, 3.0])
    assert step_series(t, v, 20.0) == (t, v)
    # 0 for 5 s then 10 for 5 s, ten times over: each 10 s bin averages exactly 5
    t = np.arange(0.0, 100.0, 5.0)
    v = np.tile([0.0, 10.0], 10)
    x, y = step_series(t, v, 100.0, max_points=10)
    assert x.tolist() == [float(k) for k in range(0, 100, 10)]
    assert y == pytest.approx([5.0] * 10)


def test_project_rows_come_from_the_summary_largest_use_first() -> None:
    rows = project_rows(hand_summary())
    assert [r[0] for r in rows] == ["climate", "llm", "bio", "idle"]
    assert rows[0] == ("climate", 32.17, 0.4730, 0.25)
    assert project_rows({}) == []


# -- the compare report ----------------------------------------------------------------------

def test_compare_report_writes_one_table_and_one_plot(tmp_path: Path) -> None:
    base = RunOptions(trace="hand", cluster="synthetic:8x8")
    runs = [CompareRun(base.with_(policy=p, load=load), {**hand_summary(), "policy": p},
                       1, 10_700.0 * load)
            for p in ("fifo", "gefion") for load in (1.0, 1.5)]
    md, png = write_compare_report(runs, tmp_path)
    assert_png(png)
    lines = md.read_text().splitlines()
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) == 1 + 4  # the header and one row per run
    assert table[0].startswith("| policy | load | jobs | avg JCT | p99 wait | p99 wait ≥64 GPUs |")
    assert table[1].startswith("| fifo | 1 | 5 | 1.1 h | 3.0 h | 3.0 h (1 job) | 31.0% |")
    out = compare_json(runs)
    assert out["trace"] == "hand" and len(out["runs"]) == 4
    assert out["runs"][3]["large_jobs"] == {"min_gpus": 64, "jobs": 1, "p99_wait_s": 16_050.0}
