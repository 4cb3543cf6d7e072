"""``gefion plan``: the JSON contract, the Rich tables, and errors that name file, line and
field — exit code 2, never a traceback.

Most tests run the real command in a child process on small files written to ``tmp_path``;
the table tests run in-process with typer's CliRunner.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gefion.cli import plan as plan_module
from gefion.cli.main import app
from gefion.core.decisions import (
    CycleResult,
    PendingReason,
    Placement,
    Preemption,
    PriorityFactors,
    Start,
    Verdict,
)
from gefion.core.errors import SpecError

REASONS = {r.value for r in PendingReason}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def assert_user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one ``error:`` line naming every needle, nothing on stdout, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    for needle in needles:
        assert needle.lower() in proc.stderr.lower(), (needle, proc.stderr)


# -- scenarios ----------------------------------------------------------------------------

EMPTY_CLUSTER = """
    cluster: synthetic:4x8
    now: 100
    pending:
      - id: gang
        gpus: 16
        time_limit: 3600
        project: climate
        submit: 10
      - id: single
        gpus: 4
        time_limit: 600
        project: bio
        submit: 20
"""

# All 32 GPUs are busy until 0 + 3600 s, so the only pending job must wait for exactly then.
FULL_CLUSTER = """
    cluster: synthetic:4x8
    now: 100
    running:
      - id: hog
        gpus: 32
        time_limit: 3600
        project: climate
        start: 0
        placement: {node00001: 8, node00002: 8, node00003: 8, node00004: 8}
    pending:
      - id: waiter
        gpus: 8
        time_limit: 600
        project: bio
        submit: 50
"""


def check_contract(out: dict[str, object]) -> None:
    """The shape other tools script against (issue #2): fields may be added, never removed."""
    started, preempted, pending = out["started"], out["preempted"], out["pending"]
    assert isinstance(started, list) and isinstance(preempted, list)
    assert isinstance(pending, list)
    for s in started:
        assert isinstance(s["id"], str)
        assert isinstance(s["nodes"], dict) and s["nodes"]
        assert all(isinstance(n, str) and isinstance(g, int) and g > 0
                   for n, g in s["nodes"].items())
    for p in preempted:
        assert isinstance(p["id"], str)
    for v in pending:
        assert isinstance(v["id"], str)
        assert v["reason"] in REASONS
        planned = v["planned_start"]
        assert planned is None or (isinstance(planned, int | float)
                                   and not isinstance(planned, bool))


# -- the JSON contract (needs gefion.formats.plan and the core's cycle) --------------------

def test_json_on_an_empty_cluster_starts_both_jobs(tmp_path: Path, run_gefion) -> None:
    proc = run_gefion("plan", write(tmp_path, "jobs.yaml", EMPTY_CLUSTER), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # stdout is the JSON document and nothing else
    check_contract(out)
    gpus = {s["id"]: sum(s["nodes"].values()) for s in out["started"]}
    assert gpus == {"gang": 16, "single": 4}
    assert out["pending"] == [] and out["preempted"] == []


def test_json_gives_a_waiting_job_its_planned_start(tmp_path: Path, run_gefion) -> None:
    proc = run_gefion("plan", write(tmp_path, "jobs.yaml", FULL_CLUSTER), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    check_contract(out)
    assert out["started"] == [] and out["preempted"] == []
    [waiter] = out["pending"]
    assert (waiter["id"], waiter["reason"], waiter["planned_start"]) == \
        ("waiter", "RESOURCES", 3600)


@pytest.mark.parametrize("extra", [["--policy", "fifo"], ["--policy", "fifo-backfill"],
                                   ["--depth", "1"], ["--policy", "gefion", "--depth", "3"]],
                         ids=" ".join)
def test_policy_and_depth_options(tmp_path: Path, run_gefion, extra: list[str]) -> None:
    proc = run_gefion("plan", write(tmp_path, "jobs.yaml", EMPTY_CLUSTER), "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    check_contract(out)
    if "--policy" in extra:
        assert extra[extra.index("--policy") + 1] in str(out["policy"])


def test_unknown_policy_is_a_user_error(tmp_path: Path, run_gefion) -> None:
    proc = run_gefion("plan", write(tmp_path, "jobs.yaml", EMPTY_CLUSTER), "--policy", "nope")
    assert_user_error(proc, "nope")


def test_table_output_of_a_real_cycle(tmp_path: Path) -> None:
    path = write(tmp_path, "jobs.yaml", FULL_CLUSTER)
    result = CliRunner().invoke(app, ["plan", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Pending (1" in result.stdout
    assert "waiter" in result.stdout and "RESOURCES" in result.stdout
    assert "3600 (in 58m)" in result.stdout  # now is 100 s


# -- bad input (needs gefion.formats.plan only) ---------------------------------------------

def test_unknown_field_names_file_line_and_field(tmp_path: Path, run_gefion) -> None:
    path = write(tmp_path, "jobs.yaml", """
        cluster: synthetic:4x8
        now: 0
        pending:
          - id: a
            gpus: 4
            time_limit: 60
            project: p
            gpuz: 4
    """)
    assert_user_error(run_gefion("plan", path), "jobs.yaml:8", "gpuz")


def test_negative_gpu_count_names_file_line_and_field(tmp_path: Path, run_gefion) -> None:
    # `gpus` opens the item, so the line is 4 whether the loader reports the item or the key.
    path = write(tmp_path, "jobs.yaml", """
        cluster: synthetic:4x8
        now: 0
        pending:
          - gpus: -4
            id: a
            time_limit: 60
            project: p
    """)
    assert_user_error(run_gefion("plan", path, "--json"), "jobs.yaml:4", "gpus")


def test_malformed_node_range_in_topology_conf(tmp_path: Path, run_gefion) -> None:
    topology = write(tmp_path, "topology.conf", """
        # two leaf switches under one spine
        SwitchName=su1 Nodes=dgx[001-004]
        SwitchName=su2 Nodes=dgx[005-0x8]
        SwitchName=spine Switches=su[1-2]
    """)
    path = write(tmp_path, "jobs.yaml", f"""
        cluster: {topology}
        now: 0
        pending: []
    """)
    assert_user_error(run_gefion("plan", path), "topology.conf:3", "nodes")


# -- errors that need no loader ------------------------------------------------------------

def test_missing_file_is_a_user_error(tmp_path: Path, run_gefion) -> None:
    assert_user_error(run_gefion("plan", tmp_path / "absent.yaml"), "absent.yaml",
                      "no such file")


def test_directory_is_a_user_error(tmp_path: Path, run_gefion) -> None:
    assert_user_error(run_gefion("plan", tmp_path), str(tmp_path), "directory")


def test_bad_option_value_exits_2(tmp_path: Path, run_gefion) -> None:
    proc = run_gefion("plan", tmp_path / "x.yaml", "--depth", "-1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


# -- in-process: rendering and the central error handler, on a hand-made result ----------------

HAND_MADE = CycleResult(
    now=3600.0,
    policy="gefion",
    starts=(
        Start("train", Placement(tuple((f"dgx{i:03d}", 8) for i in range(1, 33)))),
        Start("fill", Placement((("dgx033", 4),)), backfilled=True),
    ),
    preemptions=(Preemption("scav", grace_s=30, for_job="train", requeue=True),),
    pending=(
        Verdict("wait", PendingReason.RESOURCES, planned_start_s=10800.0,
                detail="needs 64 GPUs in [su2]"),
        Verdict("child", PendingReason.DEPENDENCY, detail="afterok:train"),
    ),
    factors={"wait": PriorityFactors(0.5, 0.1, 0.2, 0.3, 0.4, 1.0)},
    planned={},
)


@pytest.fixture
def hand_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_module, "compute_plan", lambda path, **_: HAND_MADE)


@pytest.mark.usefixtures("hand_made")
def test_tables_show_decisions_reasons_and_etas() -> None:
    result = CliRunner().invoke(app, ["plan", "any.yaml"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "2 started, 1 preempted, 2 pending" in out
    assert "dgx[001-032]" in out and "256" in out  # nodes as a hostlist, GPUs in total
    assert "dgx033" in out and "yes" in out          # the backfilled one
    assert "scav" in out and "30s" in out
    assert "10800 (in 2h00m)" in out and "0.5000" in out
    assert "needs 64 GPUs in [su2]" in out           # user text is not eaten as Rich markup
    assert "DEPENDENCY" in out and "afterok:train" in out


@pytest.mark.usefixtures("hand_made")
def test_json_is_exactly_the_contract() -> None:
    result = CliRunner().invoke(app, ["plan", "any.yaml", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stdout == json.dumps(HAND_MADE.to_json(), indent=2) + "\n"


def test_central_handler_turns_gefion_errors_into_exit_2(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    def bad(path: Path, **_: object) -> CycleResult:
        raise SpecError("must be >= 0, got -4", field="pending[0].gpus", source="j.yaml",
                        line=4)

    monkeypatch.setattr(plan_module, "compute_plan", bad)
    result = CliRunner().invoke(app, ["plan", "j.yaml"])
    assert result.exit_code == 2
    assert result.stderr == "error: j.yaml:4: field 'pending[0].gpus': must be >= 0, got -4\n"
    assert result.stdout == ""


def test_central_handler_lets_bugs_keep_their_traceback(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    def buggy(path: Path, **_: object) -> CycleResult:
        raise ZeroDivisionError("a bug, not bad input")

    monkeypatch.setattr(plan_module, "compute_plan", buggy)
    result = CliRunner().invoke(app, ["plan", "j.yaml"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ZeroDivisionError)


# -- start-up stays light ------------------------------------------------------------------

def test_help_imports_nothing_heavy() -> None:
    """``gefion --help`` must not pay for YAML, numpy, our renderers or the scheduler (Rich itself
    is allowed: typer draws its help with it)."""
    code = textwrap.dedent("""
        import sys
        from gefion.cli.main import app
        try:
            app(["--help"], prog_name="gefion")
        except SystemExit:
            pass
        heavy = ("yaml", "numpy", "gefion.formats", "gefion.core.cycle",
                 "gefion.core.snapshot", "gefion.cli.render")
        print("HEAVY:", *sorted(m for m in sys.modules if m.startswith(heavy)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "HEAVY:", proc.stdout
