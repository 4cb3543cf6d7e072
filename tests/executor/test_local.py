"""The local executor end to end: real bash scripts under real supervisors."""

from __future__ import annotations

import os
import pwd
import signal
import statistics
import subprocess
import sys
import threading
import time
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


def _env_of(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_the_script_sees_slurm_and_gpu_variables(executor: LocalExecutor, exits: Exits,
                                                 make_spec: SpecFactory,
                                                 tmp_path: Path) -> None:
    spec = make_spec("env", gpus=(2, 5), nodelist=("node1",), ntasks=2, partition="gpu",
                     account="proj", qos="high", array_job_id=40, array_task_id=3,
                     env={"PATH": "/usr/bin:/bin", "FROM_SUBMIT": "yes"},
                     extra_env={"GEFION_EXTRA": "1"}, time_limit_s=600)
    executor.launch(spec)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.exit_code, end.signal) == (JobState.COMPLETED, 0, None)
    env = _env_of(tmp_path / f"{spec.job_id}.out")
    expected = {
        "CUDA_VISIBLE_DEVICES": "2,5", "SLURM_JOB_GPUS": "2,5", "SLURM_GPUS_ON_NODE": "2",
        "SLURM_JOB_ID": str(spec.job_id), "SLURM_JOBID": str(spec.job_id),
        "SLURM_JOB_NAME": spec.name, "SLURM_NNODES": "1", "SLURM_JOB_NODELIST": "node1",
        "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
        "SLURM_NTASKS": "2", "SLURM_TASKS_PER_NODE": "2", "SLURM_JOB_PARTITION": "gpu",
        "SLURM_JOB_ACCOUNT": "proj", "SLURM_JOB_QOS": "high", "SLURM_ARRAY_JOB_ID": "40",
        "SLURM_ARRAY_TASK_ID": "3", "SLURM_SUBMIT_DIR": str(tmp_path),
        "SLURM_JOB_USER": spec.user, "SLURM_JOB_UID": str(os.geteuid()),
        "SLURM_CLUSTER_NAME": "gefion", "SLURMD_NODENAME": "node1",
        "GEFION_JOB_ID": str(spec.job_id), "GEFION_EXTRA": "1", "FROM_SUBMIT": "yes",
        "USER": spec.user, "HOME": pwd.getpwnam(spec.user).pw_dir,
    }
    assert {k: env.get(k) for k in expected} == expected
    assert env["PATH"] == f"{executor.shim_dir}:/usr/bin:/bin"
    assert int(env["SLURM_JOB_END_TIME"]) - int(env["SLURM_JOB_START_TIME"]) == 600


@pytest.mark.parametrize(("body", "state", "exit_code", "sig"), [
    pytest.param("exit 0", JobState.COMPLETED, 0, None, id="exit-0-completed"),
    pytest.param("exit 3", JobState.FAILED, 3, None, id="exit-3-failed"),
    pytest.param("kill -KILL $$", JobState.FAILED, 0, 9, id="killed-by-signal"),
    pytest.param("sleep 30 & kill -TERM $!; wait $!", JobState.FAILED, 143, None,
                 id="shell-reports-128-plus-signal"),
])
def test_exit_codes_like_sacct(executor: LocalExecutor, exits: Exits, make_spec: SpecFactory,
                               body: str, state: JobState, exit_code: int,
                               sig: int | None) -> None:
    spec = make_spec(body)
    executor.launch(spec)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.exit_code, end.signal, end.reason) == (state, exit_code, sig, None)
    assert end.start_ts <= end.end_ts


def test_stdout_and_stderr_go_to_their_files(executor: LocalExecutor, exits: Exits,
                                             make_spec: SpecFactory, tmp_path: Path) -> None:
    (tmp_path / "err.txt").write_text("old\n")
    spec = make_spec("echo out; echo err >&2", stdout_path="out.txt", stderr_path="err.txt",
                     open_mode="append")
    executor.launch(spec)
    exits.wait_for(spec.job_id)
    assert (tmp_path / "out.txt").read_text() == "out\n"  # relative: from the workdir
    assert (tmp_path / "err.txt").read_text() == "old\nerr\n"


def test_one_file_for_both_streams_is_truncated(executor: LocalExecutor, exits: Exits,
                                                make_spec: SpecFactory, tmp_path: Path) -> None:
    (tmp_path / "both.txt").write_text("stale stale stale\n")
    spec = make_spec("echo out; echo err >&2", stdout_path="both.txt", stderr_path="both.txt")
    executor.launch(spec)
    exits.wait_for(spec.job_id)
    assert (tmp_path / "both.txt").read_text() == "out\nerr\n"


def test_a_missing_output_directory_fails_the_job(executor: LocalExecutor, exits: Exits,
                                                  make_spec: SpecFactory,
                                                  tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "out.txt"
    spec = make_spec("echo never", stdout_path=str(missing))
    executor.launch(spec)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.exit_code) == (JobState.FAILED, 1)
    assert end.reason == f"cannot open output file {missing}: No such file or directory"
    log = (executor.job_dir(spec.job_id) / L.LOG).read_text()
    assert f"cannot open output file {missing}" in log


def test_a_missing_interpreter_fails_with_127(executor: LocalExecutor, exits: Exits,
                                              make_spec: SpecFactory) -> None:
    spec = make_spec("#!/no/such/shell\ntrue\n")
    executor.launch(spec)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.exit_code) == (JobState.FAILED, 127)
    assert end.reason is not None and "#! interpreter" in end.reason


def test_a_missing_workdir_runs_in_tmp_and_says_so(executor: LocalExecutor, exits: Exits,
                                                   make_spec: SpecFactory,
                                                   tmp_path: Path) -> None:
    spec = make_spec("pwd", workdir=str(tmp_path / "gone"),
                     stdout_path=str(tmp_path / "o.txt"), stderr_path=str(tmp_path / "o.txt"))
    executor.launch(spec)
    assert exits.wait_for(spec.job_id).state is JobState.COMPLETED
    lines = (tmp_path / "o.txt").read_text().splitlines()
    assert lines[0].startswith(f"gefion: warning: cannot chdir to {tmp_path / 'gone'}")
    assert lines[1] == "/tmp"


def test_time_limit_ends_the_job_as_timeout(executor: LocalExecutor, exits: Exits,
                                            make_spec: SpecFactory) -> None:
    spec = make_spec("sleep 30", time_limit_s=1)
    started = time.monotonic()
    executor.launch(spec)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.signal) == (JobState.TIMEOUT, signal.SIGTERM)
    assert 0.9 < time.monotonic() - started < 3
    state = L.read_json(str(executor.job_dir(spec.job_id) / L.STATE))
    assert group_gone(state["pgid"])


def test_time_limit_kills_a_job_that_ignores_sigterm(executor: LocalExecutor, exits: Exits,
                                                     make_spec: SpecFactory) -> None:
    spec = make_spec("trap '' TERM; sleep 30", time_limit_s=1, kill_grace_s=0)
    executor.launch(spec)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.signal) == (JobState.TIMEOUT, signal.SIGKILL)


def test_cancel_ends_the_job_and_its_background_children(executor: LocalExecutor,
                                                         exits: Exits, make_spec: SpecFactory,
                                                         tmp_path: Path) -> None:
    spec = make_spec(f"sleep 1000 & echo $! > {tmp_path}/bg.pid; wait")
    executor.launch(spec)
    background = read_pid(tmp_path / "bg.pid")
    assert not gone(background)
    executor.cancel(spec.job_id)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.signal, end.reason) == (JobState.CANCELLED, signal.SIGTERM,
                                                   "cancelled")
    assert gone(background)
    state = L.read_json(str(executor.job_dir(spec.job_id) / L.STATE))
    assert gone(state["pid"]) and group_gone(state["pgid"])
    executor.cancel(spec.job_id)  # a job that ended: nothing to do, no error


def test_cancel_of_an_unknown_job_is_an_error(executor: LocalExecutor) -> None:
    with pytest.raises(ExecutorError, match="job 999999 is not known"):
        executor.cancel(999999)


def test_preempt_lets_the_job_clean_up_within_the_grace(executor: LocalExecutor,
                                                        exits: Exits, make_spec: SpecFactory,
                                                        tmp_path: Path) -> None:
    spec = make_spec(f"trap 'echo saved > {tmp_path}/ckpt; exit 0' TERM\n"
                     f"touch {tmp_path}/up; sleep 30 & wait")
    executor.launch(spec)
    assert wait_until(lambda: (tmp_path / "up").exists())
    started = time.monotonic()
    executor.preempt(spec.job_id, grace_s=5)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.exit_code, end.signal) == (JobState.PREEMPTED, 0, None)
    assert (tmp_path / "ckpt").read_text() == "saved\n"
    assert time.monotonic() - started < 4  # it left by itself, long before the SIGKILL


def test_preempt_kills_after_the_grace(executor: LocalExecutor, exits: Exits,
                                       make_spec: SpecFactory, tmp_path: Path) -> None:
    spec = make_spec(f"trap '' TERM; touch {tmp_path}/up; sleep 30")
    executor.launch(spec)
    assert wait_until(lambda: (tmp_path / "up").exists())
    started = time.monotonic()
    executor.preempt(spec.job_id, grace_s=0.5)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.signal) == (JobState.PREEMPTED, signal.SIGKILL)
    assert 0.4 < time.monotonic() - started < 3


def test_preempt_sends_the_jobs_own_signal(executor: LocalExecutor, exits: Exits,
                                           make_spec: SpecFactory, tmp_path: Path) -> None:
    spec = make_spec(f"trap 'echo usr1 > {tmp_path}/sig; exit 0' USR1\n"
                     f"touch {tmp_path}/up; sleep 30 & wait", signal=(signal.SIGUSR1, 60))
    executor.launch(spec)
    assert wait_until(lambda: (tmp_path / "up").exists())
    executor.preempt(spec.job_id, grace_s=5)
    assert exits.wait_for(spec.job_id).state is JobState.PREEMPTED
    assert (tmp_path / "sig").read_text() == "usr1\n"


def test_signal_arrives_before_the_time_limit(executor: LocalExecutor, exits: Exits,
                                              make_spec: SpecFactory, tmp_path: Path) -> None:
    spec = make_spec(f"trap 'echo usr1 > {tmp_path}/sig; exit 0' USR1\nsleep 30 & wait",
                     time_limit_s=2, signal=(signal.SIGUSR1, 1))
    started = time.monotonic()
    executor.launch(spec)
    end = exits.wait_for(spec.job_id)
    elapsed = time.monotonic() - started
    assert end.state is JobState.COMPLETED  # it took the hint and left before the limit
    assert (tmp_path / "sig").read_text() == "usr1\n"
    assert 0.9 < elapsed < 2.5


def test_what_a_finished_script_leaves_running_is_killed(executor: LocalExecutor,
                                                         exits: Exits, make_spec: SpecFactory,
                                                         tmp_path: Path) -> None:
    # One child stays in the job's process group, one leaves it for a session of its own.
    spec = make_spec(f"sleep 1000 & echo $! > {tmp_path}/a.pid\n"
                     f"setsid sleep 1000 & echo $! > {tmp_path}/b.pid\nexit 0")
    executor.launch(spec)
    end = exits.wait_for(spec.job_id)
    assert end.state is JobState.COMPLETED
    for name in ("a.pid", "b.pid"):
        assert gone(int((tmp_path / name).read_text())), name


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_a_job_runs_as_its_user(open_dir: Path, make_spec: SpecFactory) -> None:
    nobody = pwd.getpwnam("nobody")
    out_dir = open_dir / "out"
    out_dir.mkdir()
    out_dir.chmod(0o777)
    with LocalExecutor(open_dir / "run") as executor:
        spec = make_spec('id -u; id -g; echo "$HOME $USER $LOGNAME $SLURM_JOB_UID"; pwd',
                         user="nobody", workdir=str(out_dir),
                         stdout_path=str(out_dir / "o.txt"), stderr_path=str(out_dir / "o.txt"))
        executor.launch(spec)
        end = Exits(executor).wait_for(spec.job_id)
    assert (end.state, end.exit_code) == (JobState.COMPLETED, 0), end
    output = out_dir / "o.txt"
    assert output.stat().st_uid == nobody.pw_uid  # created by the user, not by root
    assert output.read_text().splitlines() == [
        str(nobody.pw_uid), str(nobody.pw_gid),
        f"{nobody.pw_dir} nobody nobody {nobody.pw_uid}", str(out_dir)]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_srun_steps_run_as_the_jobs_user(open_dir: Path, make_spec: SpecFactory) -> None:
    out_dir = open_dir / "out"
    out_dir.mkdir()
    out_dir.chmod(0o777)
    script = ("srun -n 2 sh -c 'echo $(id -u) $SLURM_PROCID $SLURM_STEP_ID' | sort\n"
              "srun sh -c 'echo step $SLURM_STEP_ID'")
    with LocalExecutor(open_dir / "run") as executor:
        spec = make_spec(script, user="nobody", workdir=str(out_dir),
                         stdout_path=str(out_dir / "o.txt"), stderr_path=str(out_dir / "e.txt"))
        executor.launch(spec)
        end = Exits(executor).wait_for(spec.job_id, timeout_s=20)
    errors = (out_dir / "e.txt").read_text()
    if "no Python interpreter that this user may run" in errors:
        pytest.skip("no Python on this host that 'nobody' may run (the venv's is private)")
    assert (end.state, errors) == (JobState.COMPLETED, "")
    uid = pwd.getpwnam("nobody").pw_uid
    assert (out_dir / "o.txt").read_text().splitlines() == [
        f"{uid} 0 0", f"{uid} 1 0", "step 1"]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_a_user_may_only_write_where_the_user_may(open_dir: Path, make_spec: SpecFactory,
                                                  tmp_path: Path) -> None:
    closed = open_dir / "root-only"
    closed.mkdir(mode=0o755)
    with LocalExecutor(open_dir / "run") as executor:
        spec = make_spec("echo hi", user="nobody", workdir="/tmp",
                         stdout_path=str(closed / "o.txt"), stderr_path=str(closed / "o.txt"))
        executor.launch(spec)
        end = Exits(executor).wait_for(spec.job_id)
    assert (end.state, end.exit_code) == (JobState.FAILED, 1)
    assert end.reason == f"cannot open output file {closed / 'o.txt'}: Permission denied"
    assert not (closed / "o.txt").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_a_run_dir_the_user_cannot_reach_is_refused(executor: LocalExecutor,
                                                    make_spec: SpecFactory) -> None:
    # pytest's tmp_path is 0700: nobody cannot reach a script under it.
    with pytest.raises(ExecutorError, match="'nobody' cannot reach the executor's run dir"):
        executor.launch(make_spec("true", user="nobody", workdir="/tmp"))


def test_an_unknown_user_is_refused_before_anything_starts(executor: LocalExecutor,
                                                           make_spec: SpecFactory) -> None:
    spec = make_spec("true", user="no-such-user-here")
    with pytest.raises(ExecutorError, match="user 'no-such-user-here' has no account on node1"):
        executor.launch(spec)
    assert not executor.job_dir(spec.job_id).exists()
    assert executor.active == []


def test_a_job_id_in_use_is_refused_and_reused_after_acknowledge(
        executor: LocalExecutor, exits: Exits, make_spec: SpecFactory, tmp_path: Path) -> None:
    spec = make_spec("echo first")
    executor.launch(spec)
    with pytest.raises(ExecutorError, match=f"job {spec.job_id} is already known"):
        executor.launch(spec)
    exits.wait_for(spec.job_id)
    executor.acknowledge(spec.job_id)
    requeued = make_spec("echo second", job_id=spec.job_id)  # a requeued job keeps its id
    executor.launch(requeued)
    assert Exits(executor).wait_for(spec.job_id).state is JobState.COMPLETED
    assert (tmp_path / f"{spec.job_id}.out").read_text() == "second\n"


def test_wait_wakes_as_soon_as_a_job_ends(executor: LocalExecutor, make_spec: SpecFactory) -> None:
    spec = make_spec("sleep 0.2")
    executor.launch(spec)
    started = time.monotonic()
    assert executor.wait(5.0)
    assert time.monotonic() - started < 2
    assert [e.job_id for e in executor.poll()] == [spec.job_id]
    assert not executor.wait(0.05)  # nothing more to say


def test_wait_in_a_thread_of_its_own(executor: LocalExecutor, make_spec: SpecFactory) -> None:
    woken = threading.Event()

    def watch() -> None:
        while not woken.is_set():
            if executor.wait(0.2):
                woken.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        spec = make_spec("exit 0")
        executor.launch(spec)
        assert woken.wait(5)
        assert wait_until(lambda: [e.job_id for e in executor.poll()] == [spec.job_id])
    finally:
        woken.set()
        watcher.join()
    executor.close()
    assert executor.wait(0.01) is False


def test_wait_without_a_socket_watches_the_files(run_dir: Path, make_spec: SpecFactory) -> None:
    too_long = run_dir / ("x" * 120)  # no Unix socket address is that long
    with LocalExecutor(run_dir, controller_socket=too_long) as executor:
        spec = make_spec("sleep 0.2")
        executor.launch(spec)
        assert not executor.wait(0.01)
        assert executor.wait(5.0)
        assert [e.job_id for e in executor.poll()] == [spec.job_id]


def test_launch_returns_with_the_script_running_in_well_under_50_ms(
        executor: LocalExecutor, exits: Exits, make_spec: SpecFactory) -> None:
    executor.launch(warm := make_spec("#!/bin/sh\ntrue\n"))  # the fork server's start-up
    exits.wait_for(warm.job_id)
    costs = []
    for _ in range(10):
        spec = make_spec("#!/bin/sh\ntrue\n")
        started = time.perf_counter()
        executor.launch(spec)
        costs.append(time.perf_counter() - started)
    assert statistics.median(costs) < 0.050, costs
    for job_id in executor.active:
        exits.wait_for(job_id)


def test_the_fork_server_is_restarted_if_it_dies(executor: LocalExecutor, exits: Exits,
                                                 make_spec: SpecFactory) -> None:
    server = executor._forkserver
    assert server is not None
    server._proc.kill()
    server._proc.wait()
    spec = make_spec("exit 0")
    executor.launch(spec)
    assert exits.wait_for(spec.job_id).state is JobState.COMPLETED
    assert executor._forkserver is not server and executor._forkserver is not None


def test_a_supervisor_alone_refuses_a_job_that_has_one(executor: LocalExecutor,
                                                      make_spec: SpecFactory) -> None:
    spec = make_spec("sleep 30")
    executor.launch(spec)
    job_dir = executor.job_dir(spec.job_id)
    second = subprocess.run([sys.executable, "-m", "gefion.executor.supervisor", str(job_dir)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert second.returncode == 1
    assert "another supervisor holds this job's lock" in (job_dir / L.LOG).read_text()
    assert executor.reattach() == [spec.job_id]  # the first one supervises on
    executor.cancel(spec.job_id)


def test_the_supervisor_takes_sigterm_as_a_cancel(executor: LocalExecutor, exits: Exits,
                                                  make_spec: SpecFactory) -> None:
    spec = make_spec("sleep 30")
    executor.launch(spec)
    job_dir = executor.job_dir(spec.job_id)
    assert wait_until(lambda: (job_dir / L.STATE).exists())
    os.kill(L.read_json(str(job_dir / L.STATE))["supervisor_pid"], signal.SIGTERM)
    end = exits.wait_for(spec.job_id)
    assert (end.state, end.reason) == (JobState.CANCELLED, "the supervisor was sent SIGTERM")


def test_spawned_supervisors_work_the_same(run_dir: Path, make_spec: SpecFactory,
                                           tmp_path: Path) -> None:
    with LocalExecutor(run_dir, launcher="spawn") as executor:
        spec = make_spec("echo $SLURM_JOB_ID; exit 4")
        executor.launch(spec)
        end = Exits(executor).wait_for(spec.job_id)
    assert (end.state, end.exit_code) == (JobState.FAILED, 4)
    assert (tmp_path / f"{spec.job_id}.out").read_text() == f"{spec.job_id}\n"
