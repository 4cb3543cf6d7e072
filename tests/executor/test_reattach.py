"""Restarts: jobs outlive their controller, a new one re-attaches, exits are reported once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gefion.core.jobs import JobState
from gefion.executor import _layout as L
from gefion.executor.errors import ExecutorError
from gefion.executor.local import LocalExecutor
from tests.executor.helpers import (
    Exits,
    SpecFactory,
    gone,
    group_gone,
    read_pid,
    wait_until,
)


def _exit_recorded(executor: LocalExecutor, job_id: int) -> bool:
    return (executor.job_dir(job_id) / L.EXIT).exists()


def test_restart_finds_running_jobs_and_reports_each_ended_one_until_acknowledged(
        run_dir: Path, make_spec: SpecFactory) -> None:
    long, short = make_spec("sleep 30"), make_spec("exit 7")
    with LocalExecutor(run_dir) as first:
        first.launch(long)
        first.launch(short)
    # The controller is down; the short job ends meanwhile, the long one runs on.
    with LocalExecutor(run_dir, liveness_interval_s=0.1) as second:
        assert wait_until(lambda: _exit_recorded(second, short.job_id))
        assert second.reattach() == [long.job_id]
        ends = second.poll()
        assert [(e.job_id, e.state, e.exit_code) for e in ends] == [
            (short.job_id, JobState.FAILED, 7)]
        assert second.poll() == []  # once per executor
        assert second.reattach() == [long.job_id]  # asking again changes nothing
        assert second.poll() == []
    with LocalExecutor(run_dir) as third:  # not acknowledged: reported again
        assert third.reattach() == [long.job_id]
        assert [e.job_id for e in third.poll()] == [short.job_id]
        third.acknowledge(short.job_id)
    with LocalExecutor(run_dir, liveness_interval_s=0.1) as fourth:
        assert fourth.reattach() == [long.job_id]
        assert fourth.poll() == []  # acknowledged: never again
        fourth.cancel(long.job_id)
        end = Exits(fourth).wait_for(long.job_id)
        assert end.state is JobState.CANCELLED
        fourth.acknowledge(long.job_id)
        fourth.purge(long.job_id)
        assert not fourth.job_dir(long.job_id).exists()
    with LocalExecutor(run_dir) as fifth:
        assert fifth.reattach() == []
        assert fifth.poll() == []


_CONTROLLER = """
import json, sys
from pathlib import Path
from gefion.executor.local import LocalExecutor
from gefion.executor.spec import LaunchSpec
executor = LocalExecutor(Path(sys.argv[1]))
executor.launch(LaunchSpec(**json.loads(sys.argv[2])))
print("launched", flush=True)
sys.stdin.read()  # until killed
"""


def test_a_job_outlives_a_controller_killed_with_sigkill(run_dir: Path, make_spec: SpecFactory,
                                                         tmp_path: Path) -> None:
    spec = make_spec(f"echo $$ > {tmp_path}/job.pid; sleep 30")
    fields = {k: v for k, v in spec.to_json().items() if k in (
        "job_id", "name", "user", "script", "workdir", "node", "stdout_path", "stderr_path",
        "kill_grace_s", "env")}
    controller = subprocess.Popen(
        [sys.executable, "-c", _CONTROLLER, str(run_dir), json.dumps(fields)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert controller.stdout is not None
        assert controller.stdout.readline() == "launched\n"
        controller.kill()  # SIGKILL: no clean-up of any kind
    finally:
        controller.wait()
        for stream in (controller.stdin, controller.stdout):
            if stream is not None:
                stream.close()
    job_pid = read_pid(tmp_path / "job.pid")
    with LocalExecutor(run_dir, liveness_interval_s=0.1) as restarted:
        assert restarted.reattach() == [spec.job_id]
        assert not gone(job_pid)
        assert restarted.poll() == []
        restarted.cancel(spec.job_id)
        end = Exits(restarted).wait_for(spec.job_id)
    assert end.state is JobState.CANCELLED
    assert gone(job_pid)


def test_a_killed_supervisor_is_reported_failed_and_its_job_killed(
        executor: LocalExecutor, exits: Exits, make_spec: SpecFactory, tmp_path: Path) -> None:
    spec = make_spec(f"sleep 1000 & echo $! > {tmp_path}/bg.pid; sleep 1000")
    executor.launch(spec)
    job_dir = executor.job_dir(spec.job_id)
    background = read_pid(tmp_path / "bg.pid")
    assert wait_until(lambda: (job_dir / L.STATE).exists())
    state = L.read_json(str(job_dir / L.STATE))
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.exit_code) == (JobState.FAILED, 1)
    assert end.reason is not None and end.reason.startswith("supervisor lost")
    assert end.start_ts == state["start_ts"]
    assert wait_until(lambda: gone(state["pid"]) and gone(background))
    assert wait_until(lambda: group_gone(state["pgid"]))
    # The verdict is durable: a restarted controller reports the same.
    executor.close()
    with LocalExecutor(executor.run_dir) as restarted:
        assert restarted.reattach() == []
        assert restarted.poll() == [end]


def test_a_job_whose_supervisor_never_started_is_reported_failed(run_dir: Path) -> None:
    with LocalExecutor(run_dir) as executor:
        (run_dir / "77").mkdir()  # what a controller killed mid-launch leaves behind
        (run_dir / "77" / L.SPEC).write_text("{}")
        assert executor.reattach() == []
        [end] = executor.poll()
    assert (end.job_id, end.state) == (77, JobState.FAILED)
    assert end.reason == "supervisor lost before the job started"


def test_one_executor_per_run_dir(executor: LocalExecutor) -> None:
    with pytest.raises(ExecutorError, match="in use by another executor"):
        LocalExecutor(executor.run_dir)


def test_acknowledging_an_exit_that_does_not_exist_is_an_error(executor: LocalExecutor,
                                                               make_spec: SpecFactory) -> None:
    spec = make_spec("sleep 30")
    executor.launch(spec)
    with pytest.raises(ExecutorError, match="has no exit to acknowledge"):
        executor.acknowledge(spec.job_id)
    with pytest.raises(ExecutorError, match="is not acknowledged"):
        executor.purge(spec.job_id)
    executor.cancel(spec.job_id)
