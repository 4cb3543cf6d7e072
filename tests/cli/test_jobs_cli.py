"""The job commands as a user runs them: real ``gefion`` processes against a real server
(a controller with its loop, uvicorn on 127.0.0.1) — submit, queue, release, logs, history;
``--test-only --json``; errors that name file and line with exit status 2; and the fast
``gefion queue`` printing what the Typer command prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.api.helpers import ME, Site, running_site
from tests.conftest import GefionRunner

JOB = """\
#!/bin/bash
#SBATCH --job-name=hello
#SBATCH --gpus=1
#SBATCH --time=2
#SBATCH --account=nlp
echo "hello from $SLURM_JOB_ID: $1"
"""


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    with running_site(loop=True) as s:
        monkeypatch.setenv("GEFION_SERVER", s.url)
        monkeypatch.setenv("GEFION_TOKEN", s.token)  # the site admin's, as gefion up's
        yield s


@pytest.fixture
def gefion(run_gefion: GefionRunner, site: Site) -> GefionRunner:
    """``gefion ARGS`` in the site's submit directory."""
    def run(*args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
        return run_gefion(*args, cwd=site.workdir, timeout_s=60)
    return run


def fast_queue(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``gefion queue ARGS`` through the console entry point (the fast path)."""
    return subprocess.run([sys.executable, "-m", "gefion.cli.fastqueue", "queue", *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          cwd=cwd, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)
    return proc.stderr


def test_submit_queue_run_history(gefion: GefionRunner, site: Site) -> None:
    (site.workdir / "job.sh").write_text(JOB)
    assert ok(gefion("submit", "--hold", "job.sh", "world")) == "Submitted batch job 1\n"
    table = ok(fast_queue(cwd=site.workdir)).splitlines()
    assert table[0].split() == ["JOBID", "NAME", "USER", "PROJECT", "STATE", "TIME", "NODES",
                                "NODELIST(REASON)"]
    assert table[1].split() == ["1", "hello", ME, "nlp", "PENDING", "0:00", "1", "(HELD)"]
    assert "hello" in ok(gefion("queue"))  # the Typer command's Rich table
    assert ok(gefion("release", "1")) == ""
    site.wait(1, lambda r: r.state.terminal, step=False)
    assert ok(gefion("logs", "1")) == "hello from 1: world\n"
    history = ok(gefion("history")).splitlines()
    assert history[0].split()[:6] == ["JOBID", "NAME", "USER", "PROJECT", "STATE", "EXITCODE"]
    assert history[1].split()[:6] == ["1", "hello", ME, "nlp", "COMPLETED", "0:0"]
    (job,) = json.loads(ok(gefion("history", "--json", "-A", "nlp", "-S", "now-1hours")))
    assert (job["id"], job["state"], job["exit"], job["gpus"]) == (1, "COMPLETED", "0:0", 1)
    shown = json.loads(ok(gefion("show", "1", "--json")))
    assert shown["job"]["state"] == "COMPLETED" and "env" not in shown["job"]["spec"]
    assert [e["kind"] for e in shown["events"]][-1] == "job.finished"


def test_wrap_parsable_hold_release_cancel_and_nodes(gefion: GefionRunner,
                                                     site: Site) -> None:
    out = ok(gefion("submit", "--parsable", "--hold", "-J", "w", "--wrap", "sleep 30"))
    assert out.strip().isdigit()
    job_id = out.strip()
    assert ok(gefion("release", job_id)) == ""
    site.wait(int(job_id), lambda r: r.state.value == "RUNNING", step=False)
    user_error(gefion("hold", job_id), f"job {job_id} is RUNNING")
    user_error(gefion("cancel", job_id, "999"), "no job 999")  # the known one is cancelled
    assert site.wait(int(job_id), lambda r: r.state.terminal, step=False).state.value == \
        "CANCELLED"
    nodes = json.loads(ok(gefion("nodes", "--json")))
    assert (nodes[0]["name"], nodes[0]["gpus"], nodes[0]["state"]) == ("node1", 2, "idle")
    assert ok(gefion("nodes")).split()[:7] == ["NODE", "STATE", "GPUS", "ALLOC", "SU",
                                               "RESERVATION", "REASON"]


def test_test_only_json_prints_the_parsed_job(gefion: GefionRunner, site: Site) -> None:
    (site.workdir / "job.sh").write_text(JOB)
    parsed = json.loads(ok(gefion("submit", "--test-only", "--json", "-N", "1",
                                  "--dependency=afterok:7", "job.sh")))
    assert {"name": "hello", "nodes": 1, "gpus": 1, "gpus_per_node": None,
            "time_limit_s": 120, "project": "nlp", "qos": None, "array": None,
            "dependencies": ["afterok:7"], "output": "slurm-%j.out",
            "error": "slurm-%j.out", "chdir": None}.items() <= parsed.items()
    assert "would be accepted" in ok(gefion("submit", "--test-only", "job.sh"))
    assert json.loads(ok(fast_queue("--json"))) == {"jobs": []}  # nothing submitted


def test_errors_name_file_and_line_and_exit_2(gefion: GefionRunner, site: Site) -> None:
    (site.workdir / "bad.sh").write_text(textwrap.dedent("""\
        #!/bin/bash
        #SBATCH --gpus=1
        #SBATCH --time=soon
        echo never
    """))
    user_error(gefion("submit", "bad.sh"), "error: bad.sh:3: field '--time': ", "soon")
    user_error(gefion("submit", "missing.sh"), "missing.sh")
    user_error(gefion("history", "-S", "yesterday-ish"), "--starttime")
    user_error(fast_queue("-t", "COMPLETED"), "gefion history")


def test_fast_queue_prints_what_the_typer_command_prints(gefion: GefionRunner,
                                                         site: Site) -> None:
    for argv in (["--hold"], ["--hold", "-A", "bio"], ["--hold", "--array=1-3"]):
        site.submit_ok(JOB, *argv)  # through the API: the commands under test only read
    cases = ([], ["-u", ME, "--start"], ["--project=bio"], ["-t", "PENDING", "-j", "1,3"])
    with ThreadPoolExecutor(4) as pool:  # the same queue, asked both ways, in parallel
        fast = list(pool.map(lambda args: ok(fast_queue(*args, "--json")), cases))
        typer = list(pool.map(lambda args: ok(gefion("queue", *args, "--json")), cases))
        tables = list(pool.map(ok, [fast_queue("--start"), gefion("queue", "--start")]))
    assert fast == typer
    assert tables[0] == tables[1] and tables[0].count("(HELD)") == 5
    assert [[j["id"] for j in json.loads(out)["jobs"]] for out in fast] == \
        [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [2], [1, 3, 4, 5]]  # 3 is also the array's id


def test_an_unreachable_server_is_named(run_gefion: GefionRunner,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://127.0.0.1:9"  # discard: nothing listens
    monkeypatch.setenv("GEFION_SERVER", url)
    for proc in (run_gefion("queue"), fast_queue(), fast_queue("--server", url)):
        user_error(proc, f"cannot reach the Gefion server at {url}", "gefion up")


def test_help_imports_no_client_and_no_server() -> None:
    code = textwrap.dedent("""
        import sys
        from gefion.cli.main import app
        for argv in (["--help"], ["submit", "--help"], ["queue", "--help"],
                     ["history", "--help"]):
            try:
                app(argv, prog_name="gefion")
            except SystemExit:
                pass
        heavy = ("httpx", "fastapi", "sqlalchemy", "uvicorn", "gefion.client",
                 "gefion.api", "gefion.controller", "gefion.store")
        print("HEAVY:", *sorted({m.split(".")[0] if not m.startswith("gefion") else m
                                  for m in sys.modules if m.startswith(heavy)}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "HEAVY:", proc.stdout


@pytest.mark.parametrize(("words", "flags", "script", "args"), [
    (["job.sh"], [], "job.sh", []),
    (["job.sh", "-N", "2", "--x"], [], "job.sh", ["-N", "2", "--x"]),
    (["-N", "2", "--gpus=8", "job.sh", "a"], ["-N", "2", "--gpus=8"], "job.sh", ["a"]),
    (["-N2", "-t", "10", "job.sh"], ["-N2", "-t", "10"], "job.sh", []),
    (["-HJ", "name", "job.sh"], ["-HJ", "name"], "job.sh", []),
    (["--hold", "--time", "1:00", "job.sh"], ["--hold", "--time", "1:00"], "job.sh", []),
    (["--exclusive", "job.sh"], ["--exclusive"], "job.sh", []),
    (["--server", "http://h:1", "job.sh"], ["--server", "http://h:1"], "job.sh", []),
    (["--wrap", "echo hi"], ["--wrap", "echo hi"], None, []),
    (["--", "-weird.sh"], [], "-weird.sh", []),
])
def test_sbatch_flags_end_at_the_script(words: list[str], flags: list[str],
                                        script: str | None, args: list[str]) -> None:
    from gefion.cli.jobs import split_submit_args

    assert split_submit_args(words) == (flags, script, args)
