"""Real batch scripts through the real controller: submit → run → exit code, on SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gefion.controller.service import Controller
from gefion.core.jobs import JobState
from tests.controller.conftest import NODE, ended, state_is, submit, wait_for


def test_a_script_runs_with_slurm_variables_and_completes(controller: Controller,
                                                         workdir: Path) -> None:
    script = """#!/bin/bash
#SBATCH -J hello -G 2 -t 1:00
echo "id=$SLURM_JOB_ID name=$SLURM_JOB_NAME nodes=$SLURM_NNODES list=$SLURM_JOB_NODELIST"
echo "gpus=$CUDA_VISIBLE_DEVICES on_node=$SLURM_GPUS_ON_NODE submit=$SLURM_SUBMIT_DIR"
echo "procid=$SLURM_PROCID nodeid=$SLURM_NODEID"
"""
    (job_id,) = submit(controller, workdir, script)
    row = wait_for(controller, job_id, ended)
    assert (row.state, row.exit_code) == (JobState.COMPLETED, 0)
    assert row.allocation == ((NODE, (0, 1)),)
    out = (workdir / f"slurm-{job_id}.out").read_text()
    assert f"id={job_id} name=hello nodes=1 list={NODE}" in out
    assert f"gpus=0,1 on_node=2 submit={workdir}" in out
    assert "procid=0 nodeid=0" in out


def test_a_failing_script_is_failed_with_its_exit_code(controller: Controller,
                                                      workdir: Path) -> None:
    (job_id,) = submit(controller, workdir, "#!/bin/sh\necho about to fail >&2\nexit 3\n",
                       "-e", "err-%j.log")
    row = wait_for(controller, job_id, ended)
    assert (row.state, row.exit_code) == (JobState.FAILED, 3)
    assert (workdir / f"err-{job_id}.log").read_text() == "about to fail\n"


def test_a_job_over_its_time_limit_is_killed_as_timeout(controller: Controller,
                                                        workdir: Path) -> None:
    (job_id,) = submit(controller, workdir, "#!/bin/sh\n#SBATCH -t 0:01\nsleep 60\n")
    row = wait_for(controller, job_id, ended, timeout_s=20)
    assert row.state is JobState.TIMEOUT
    assert row.end_ts is not None and row.start_ts is not None
    assert 1.0 <= row.end_ts - row.start_ts < 10.0


def test_cancel_ends_the_job_and_its_whole_process_tree(controller: Controller,
                                                        workdir: Path) -> None:
    script = "#!/bin/bash\nsleep 1000 &\necho $! > child.pid\nwait\n"
    (job_id,) = submit(controller, workdir, script)
    wait_for(controller, job_id, state_is(JobState.RUNNING))
    pid_file = workdir / "child.pid"
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the job never started its child"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    controller.cancel(job_id, by="root")
    row = wait_for(controller, job_id, ended)
    assert row.state is JobState.CANCELLED
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and \
            Path(f"/proc/{child}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, f"the job's child {child} survived the cancel"
        time.sleep(0.05)


def test_cancelling_a_pending_job_keeps_it_from_ever_running(controller: Controller,
                                                             workdir: Path) -> None:
    (blocker,) = submit(controller, workdir, "#!/bin/sh\n#SBATCH -G 8\nsleep 30\n")
    (waiting,) = submit(controller, workdir, "#!/bin/sh\n#SBATCH -G 8\ntouch ran\n")
    wait_for(controller, blocker, state_is(JobState.RUNNING))
    controller.cancel(waiting, by="root")
    assert controller.get_job(waiting).state is JobState.CANCELLED
    controller.cancel(blocker, by="root")
    wait_for(controller, blocker, ended)
    controller.step()
    assert not (workdir / "ran").exists()


def test_afterok_waits_for_success_and_never_runs_after_a_failure(controller: Controller,
                                                                  workdir: Path) -> None:
    (first,) = submit(controller, workdir, "#!/bin/sh\nsleep 1\n")
    (bad,) = submit(controller, workdir, "#!/bin/sh\nexit 1\n")
    (after,) = submit(controller, workdir, "#!/bin/sh\ntouch after-ok\n",
                      f"--dependency=afterok:{first}")
    (never,) = submit(controller, workdir, "#!/bin/sh\ntouch never\n", "-d", f"afterok:{bad}")
    wait_for(controller, first, state_is(JobState.RUNNING))
    controller.step()
    assert controller.get_job(after).state is JobState.PENDING
    assert controller.get_job(after).reason == "DEPENDENCY"
    row = wait_for(controller, after, ended)
    assert row.state is JobState.COMPLETED
    assert row.start_ts is not None and row.start_ts >= controller.get_job(first).end_ts
    wait_for(controller, never, lambda r: r.reason == "DEPENDENCY_NEVER")
    assert not (workdir / "never").exists()


def test_an_array_of_ten_with_a_limit_of_two_runs_two_at_a_time(controller: Controller,
                                                                workdir: Path) -> None:
    script = """#!/bin/sh
#SBATCH -a 0-9%2 -G 1 -o arr-%A_%a.out
echo "start $(date +%s.%N)"
sleep 0.4
echo "end $(date +%s.%N) task=$SLURM_ARRAY_TASK_ID array=$SLURM_ARRAY_JOB_ID"
"""
    ids = submit(controller, workdir, script)
    assert len(ids) == 10
    spans = []
    for task, job_id in enumerate(ids):
        row = wait_for(controller, job_id, ended, timeout_s=60)
        assert (row.state, row.array_job_id, row.array_task_id) == \
            (JobState.COMPLETED, ids[0], task)
        lines = (workdir / f"arr-{ids[0]}_{task}.out").read_text().split()
        assert f"task={task}" in lines and f"array={ids[0]}" in lines
        spans.append((float(lines[1]), float(lines[3])))
    for start, _ in spans:  # never more than two tasks at once
        assert sum(1 for s, e in spans if s <= start < e) <= 2


def test_srun_starts_tasks_with_their_own_rank_and_share_of_gpus(controller: Controller,
                                                                 workdir: Path) -> None:
    script = """#!/bin/bash
#SBATCH -N 1 -n 2 -G 4
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)
echo "master=$MASTER_ADDR"
srun bash -c 'echo "rank=$SLURM_PROCID local=$SLURM_LOCALID gpus=$CUDA_VISIBLE_DEVICES"'
"""
    (job_id,) = submit(controller, workdir, script)
    row = wait_for(controller, job_id, ended)
    out = (workdir / f"slurm-{job_id}.out").read_text()
    assert row.state is JobState.COMPLETED, out
    assert f"master={NODE}" in out
    ranks = sorted(line for line in out.splitlines() if line.startswith("rank="))
    assert ranks == ["rank=0 local=0 gpus=0,1", "rank=1 local=1 gpus=2,3"]


def test_jobs_run_as_the_submitting_user(controller: Controller, data_dir: Path) -> None:
    if os.geteuid() != 0:
        raise AssertionError("the controller tests run as root (as CI does)")
    shared = data_dir / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    from gefion.controller.submission import SubmitRequest

    ids, _ = controller.submit(SubmitRequest(user="nobody", cwd=str(shared),
                                             script="#!/bin/sh\nid -un\n"))
    row = wait_for(controller, ids[0], ended)
    assert row.state is JobState.COMPLETED
    assert (shared / f"slurm-{ids[0]}.out").read_text().strip() == "nobody"


def test_a_user_without_an_account_here_is_refused(controller: Controller,
                                                   workdir: Path) -> None:
    import pytest

    from gefion.controller.submission import SubmitRequest
    from gefion.core.errors import InputError

    with pytest.raises(InputError, match="no-such-user-xyz") as caught:
        controller.submit(SubmitRequest(user="no-such-user-xyz", cwd=str(workdir),
                                        script="#!/bin/sh\ntrue\n"))
    assert caught.value.field == "user"
    assert controller.list_jobs() == []  # nothing stored

