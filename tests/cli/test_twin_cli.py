"""``gefion twin run`` and ``gefion twin compare``, run for real in a child process: the JSON
contract, the report files, compare equal to runs alone, and bad input that exits 2 with a
message naming the field — never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import GefionRunner
from tests.twin.test_run import PER_CLASS_KEYS, SUMMARY_KEYS, small_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL = ("--cluster", "synthetic:2x8", "--seed", "1")


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one ``error:`` line naming every needle, nothing on stdout, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    for needle in needles:
        assert needle.lower() in proc.stderr.lower(), (needle, proc.stderr)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 10_000, (path, len(data))


# -- gefion twin run ----------------------------------------------------------------------------

def test_run_writes_json_report_and_prints_a_table(tmp_path: Path,
                                                   run_gefion: GefionRunner) -> None:
    out, report = tmp_path / "out.json", tmp_path / "report"
    proc = ok(run_gefion("twin", "run", "--trace", small_csv(tmp_path), *SMALL,
                         "--policy", "fifo-backfill", "--json", out, "--report", report))
    summary = json.loads(out.read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["jobs"] == 12 and summary["policy"] == "fifo-backfill"
    assert all(set(block) >= PER_CLASS_KEYS for block in summary["by_size"].values())
    assert out.read_text() == json.dumps(summary, indent=2, sort_keys=True) + "\n"
    assert "avg JCT" in proc.stdout and "fifo-backfill" in proc.stdout
    assert "━" not in proc.stderr  # stderr is no terminal: no progress bar
    assert (report / "report.md").read_text().startswith("# Twin run: small on synthetic:2x8")
    for name in ("allocation.png", "jct_cdf.png", "project_share.png"):
        assert_png(report / name)


def test_set_gives_the_policy_its_parameters_and_the_summary_says_so(
        tmp_path: Path, run_gefion: GefionRunner) -> None:
    trace = small_csv(tmp_path)
    plain = json.loads(ok(run_gefion("twin", "run", "--trace", trace, *SMALL, "--policy",
                                     "gefion", "--json", "-")).stdout)
    assert "policy_settings" not in plain
    proc = ok(run_gefion("twin", "run", "--trace", trace, *SMALL, "--policy", "gefion",
                         "--set", "weights.starve_after_s=null", "--set",
                         "weights.gang_min_nodes=2", "--set", "placement=first-fit",
                         "--json", "-"))
    assert json.loads(proc.stdout)["policy_settings"] == {
        "weights": {"starve_after_s": None, "gang_min_nodes": 2}, "placement": "first-fit"}


def test_run_on_an_itp_cluster_with_json_on_stdout(run_gefion: GefionRunner) -> None:
    proc = ok(run_gefion("twin", "run", "--trace", "itp-elasticflow/cluster10", "--policy",
                         "gefion", "--json", "-", "--quiet"))
    summary = json.loads(proc.stdout)  # stdout is the JSON document and nothing else
    assert summary["jobs"] == 260 and summary["trace"].startswith("itp-elasticflow")
    assert summary["cluster"] == "gefion" and 0 < summary["gpu_allocation"] <= 1
    assert proc.stderr == ""


# -- gefion twin compare ------------------------------------------------------------------------

def test_compare_equals_runs_alone(tmp_path: Path, run_gefion: GefionRunner) -> None:
    trace = small_csv(tmp_path)
    proc = ok(run_gefion("twin", "compare", "--trace", trace, *SMALL, "--policies",
                         "fifo,las", "--loads", "1,2", "--workers", "2", "--json",
                         tmp_path / "all.json", "--report", tmp_path / "cmp"))
    runs = json.loads((tmp_path / "all.json").read_text())["runs"]
    assert [(r["policy"], r["load"]) for r in runs] == [("fifo", 1.0), ("fifo", 2.0),
                                                        ("las", 1.0), ("las", 2.0)]
    assert proc.stdout.count("· seed 1") == 1  # one table, one row per grid cell
    rows = [line.split() for line in proc.stdout.splitlines() if line.split()[:1] in
            (["fifo"], ["las"])]
    assert [row[:3] for row in rows] == [["fifo", "1", "12"], ["fifo", "2", "12"],
                                         ["las", "1", "12"], ["las", "2", "12"]]
    assert_png(tmp_path / "cmp" / "compare.png")
    assert (tmp_path / "cmp" / "compare.md").is_file()
    for policy, load in (("fifo", "2"), ("las", "1")):
        alone = ok(run_gefion("twin", "run", "--trace", trace, *SMALL, "--policy", policy,
                              "--load", load, "--json", "-"))
        cell = next(r for r in runs if r["policy"] == policy and r["load"] == float(load))
        assert cell["summary"] == json.loads(alone.stdout)


# -- bad input ----------------------------------------------------------------------------------

BAD_CSV = "job_id,submit_time_s,duration_s,num_gpus\na,0,10,1\nb,soon,10,1\n"


@pytest.mark.parametrize(("args", "needles"), [
    (("run", "--trace", "no-such-trace"), ("field 'trace'", "no-such-trace", "known:")),
    (("run", "--trace", "{small}", "--policy", "nope"), ("unknown policy 'nope'",)),
    (("run", "--trace", "{small}", "--load", "0"), ("field 'load'", "> 0")),
    (("run", "--trace", "{small}", "--load", "-1.5"), ("field 'load'",)),
    (("run", "--trace", "{bad}"), ("bad.csv:3", "field 'submit_time_s'", "'soon'")),
    (("run", "--trace", "{small}", "--cluster", "synthetic:0x8"), ("field 'cluster'",)),
    (("run", "--trace", "{small}", "--from", "yesterday"), ("field 'from'",)),
    (("run", "--trace", "{small}", "--json", "{tmp}/missing/out.json"),
     ("field 'json'", "missing")),
    (("compare", "--trace", "{small}", "--policies", "fifo,nope"), ("unknown policy 'nope'",)),
    (("compare", "--trace", "{small}", "--policies", "fifo", "--loads", "1,0"),
     ("field 'loads'",)),
    (("run", "--trace", "{small}", "--set", "starve"), ("field 'set'", "NAME=VALUE")),
    (("run", "--trace", "{small}", "--set", "weights.starve_after_s=-1"),
     ("weights.starve_after_s", ">= 0")),
    (("run", "--trace", "{small}", "--set", "weights.patience=1"), ("patience",)),
    (("compare", "--trace", "{small}", "--policies", "fifo,gefion", "--set",
      "weights.age=1"), ("policy 'fifo' has no parameter weights",)),
    (("sweep", "--traces", "{small}", "--policies", "gefion", "--set", "weights.age=-1"),
     ("weights.age", ">= 0")),
], ids=["trace", "policy", "load-zero", "load-negative", "csv", "cluster", "from", "json-dir",
        "compare-policy", "compare-loads", "set-form", "set-value", "set-name", "set-policy",
        "sweep-set"])
def test_bad_input_exits_2_naming_the_field(tmp_path: Path, run_gefion: GefionRunner,
                                            args: tuple[str, ...],
                                            needles: tuple[str, ...]) -> None:
    (tmp_path / "bad.csv").write_text(BAD_CSV)
    paths = {"small": str(small_csv(tmp_path)), "bad": str(tmp_path / "bad.csv"),
             "tmp": str(tmp_path)}
    proc = run_gefion("twin", *(a.format(**paths) for a in args))
    assert_user_error(proc, *needles)


# -- start-up stays light -----------------------------------------------------------------------

def test_twin_help_imports_nothing_heavy() -> None:
    code = textwrap.dedent("""
        import sys
        from gefion.cli.main import app
        for argv in (["twin", "--help"], ["twin", "run", "--help"],
                     ["twin", "compare", "--help"]):
            try:
                app(argv, prog_name="gefion")
            except SystemExit:
                pass
        heavy = ("yaml", "numpy", "matplotlib", "gefion.formats", "gefion.core.cycle",
                 "gefion.twin.")
        print("HEAVY:", *sorted(m for m in sys.modules if m.startswith(heavy)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "HEAVY:", proc.stdout


def test_twin_commands_run_numpy_on_one_blas_thread_others_leave_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from gefion.cli.fastqueue import one_blas_thread

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    one_blas_thread(["up", "--port", "0"])
    assert "OPENBLAS_NUM_THREADS" not in os.environ
    one_blas_thread(["twin", "run", "--trace", "x"])
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")  # the caller's choice stands
    one_blas_thread(["twin", "run"])
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"
