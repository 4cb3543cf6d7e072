"""``srun`` and ``scontrol`` inside jobs: the command line, the step plan, and real steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from gefion.core.jobs import JobState
from gefion.executor.local import LocalExecutor
from gefion.executor.placement import TaskPlacement
from gefion.executor.srun import SrunError, SrunOptions, main, parse_args, plan_step
from tests.executor.helpers import Exits, SpecFactory, gone, read_pid


@pytest.mark.parametrize(("argv", "opts", "command"), [
    pytest.param(["hostname"], SrunOptions(), ["hostname"], id="command-only"),
    pytest.param(["-n", "2", "hostname"], SrunOptions(ntasks=2), ["hostname"], id="short-space"),
    pytest.param(["-n2", "-N1", "x"], SrunOptions(ntasks=2, nodes=1), ["x"], id="short-glued"),
    pytest.param(["--ntasks=4", "--gpus-per-task", "1", "x"],
                 SrunOptions(ntasks=4, gpus_per_task=1), ["x"], id="long-forms"),
    pytest.param(["-l", "--", "-x", "-n", "3"], SrunOptions(label=True), ["-x", "-n", "3"],
                 id="double-dash-ends-options"),
    pytest.param(["echo", "-n", "3"], SrunOptions(), ["echo", "-n", "3"],
                 id="options-of-the-command-are-its-own"),
    pytest.param(["-c", "8", "--ntasks-per-node=2", "x"],
                 SrunOptions(cpus_per_task=8, ntasks_per_node=2), ["x"], id="cpus-and-per-node"),
])
def test_parse_args(argv: list[str], opts: SrunOptions, command: list[str]) -> None:
    assert parse_args(argv) == (opts, command)


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["--mpi=pmix", "x"], "option --mpi is not supported", id="unsupported-long"),
    pytest.param(["-x", "n1", "x"], "option -x is not supported", id="unsupported-short"),
    pytest.param(["-n"], "option -n needs a value", id="missing-value"),
    pytest.param(["-n", "two", "x"], "needs a whole number, got 'two'", id="not-a-number"),
    pytest.param(["-n", "0", "x"], "must be >= 1", id="zero"),
    pytest.param(["--label=yes", "x"], "takes no value", id="flag-with-value"),
])
def test_parse_args_refuses(argv: list[str], message: str) -> None:
    with pytest.raises(SrunError, match=message):
        parse_args(argv)


JOB = {"SLURM_JOB_NODELIST": "n[1-2]", "SLURM_JOB_GPUS": "0,1,2,3", "SLURM_NTASKS": "2"}


@pytest.mark.parametrize(("argv", "env", "placed"), [
    pytest.param(["x"], JOB, [(0, "n1", (0, 1, 2, 3)), (1, "n2", (0, 1, 2, 3))],
                 id="default-one-task-per-node"),
    pytest.param(["-n", "2", "-N", "1", "x"], JOB, [(0, "n1", (0, 1)), (1, "n1", (2, 3))],
                 id="two-tasks-on-one-node-split-gpus"),
    pytest.param(["-n", "1", "x"], JOB, [(0, "n1", (0, 1, 2, 3))], id="one-task-one-node"),
    pytest.param(["-N", "1", "--ntasks-per-node", "4", "x"], JOB,
                 [(i, "n1", (i,)) for i in range(4)], id="tasks-per-node"),
    pytest.param(["-n", "2", "-N", "1", "x"], {**JOB, "SLURM_GPUS_PER_TASK": "1"},
                 [(0, "n1", (0,)), (1, "n1", (1,))], id="gpus-per-task-from-the-job"),
])
def test_plan_step(argv: list[str], env: dict[str, str],
                   placed: list[tuple[int, str, tuple[int, ...]]]) -> None:
    step: tuple[TaskPlacement, ...] = plan_step(parse_args(argv)[0], env)
    assert [(t.procid, t.node, t.gpus) for t in step] == placed


def test_plan_step_outside_a_job() -> None:
    with pytest.raises(SrunError, match="not inside a job"):
        plan_step(SrunOptions(), {})


def test_main_reports_errors_on_stderr(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_NODELIST", "n1")
    monkeypatch.setenv("SLURM_JOB_GPUS", "0")
    assert main(["--gpus-per-task=2", "true"]) == 1
    assert capsys.readouterr().err == (
        "srun: error: 1 task(s) × --gpus-per-task=2 need 2 GPUs on n1, but the job has 1 "
        "there\n")
    assert main([]) == 1
    assert "no command to run" in capsys.readouterr().err


def test_srun_in_a_batch_script(executor: LocalExecutor, exits: Exits, make_spec: SpecFactory,
                                tmp_path: Path) -> None:
    script = """
srun -n 2 sh -c 'echo "task $SLURM_PROCID $SLURM_LOCALID [$CUDA_VISIBLE_DEVICES] \
$SLURM_STEP_ID $SLURM_NTASKS"' | sort
srun sh -c 'echo "step $SLURM_STEP_ID [$CUDA_VISIBLE_DEVICES]"'
srun -l -n 2 echo hi | sort
srun --gpus-per-task=3 -n 2 true; echo "rc=$?"
srun --mpi=pmix true; echo "rc=$?"
scontrol show hostnames
scontrol show hostnames 'a[1-2],b'
scontrol reconfigure; echo "rc=$?"
srun -n 3 sh -c 'exit $SLURM_PROCID'
"""
    spec = make_spec(script, gpus=(0, 1, 2, 3), stderr_path=str(tmp_path / "err.txt"))
    executor.launch(spec)
    end = exits.wait_for(spec.job_id, timeout_s=20)
    assert (end.state, end.exit_code) == (JobState.FAILED, 2)  # the highest task's code
    assert (tmp_path / f"{spec.job_id}.out").read_text().splitlines() == [
        "task 0 0 [0,1] 0 2", "task 1 1 [2,3] 0 2",
        "step 1 [0,1,2,3]",
        "0: hi", "1: hi",
        "rc=1", "rc=1",
        "node1",
        "a1", "a2", "b",
        "rc=1",
    ]
    assert (tmp_path / "err.txt").read_text().splitlines() == [
        "srun: error: 2 task(s) × --gpus-per-task=3 need 6 GPUs on node1, but the job has 4 "
        "there",
        "srun: error: option --mpi is not supported by Gefion's local srun (supported: "
        "-n/--ntasks, -N/--nodes, --ntasks-per-node, --gpus-per-task, -c/--cpus-per-task, "
        "-l/--label)",
        "scontrol: error: 'reconfigure' is not supported by Gefion's local scontrol",
        "usage: scontrol show hostnames [HOSTLIST] | scontrol show job [JOB_ID]",
        "srun: error: node1: task 1: Exited with exit code 1",
        "srun: error: node1: task 2: Exited with exit code 2",
    ]


def test_scontrol_lists_the_jobs_nodes(executor: LocalExecutor, exits: Exits,
                                       make_spec: SpecFactory, tmp_path: Path) -> None:
    spec = make_spec("scontrol show hostnames; scontrol show job | head -1",
                     nodelist=("node1", "node2", "node3"), ntasks=3)
    executor.launch(spec)
    assert exits.wait_for(spec.job_id, timeout_s=20).state is JobState.COMPLETED
    assert (tmp_path / f"{spec.job_id}.out").read_text().splitlines() == [
        "node1", "node2", "node3", f"JobId={spec.job_id} JobName={spec.name}"]


def test_cancel_reaches_the_tasks_of_a_step(executor: LocalExecutor, exits: Exits,
                                            make_spec: SpecFactory, tmp_path: Path) -> None:
    spec = make_spec(f"srun -n 2 sh -c 'echo $$ > {tmp_path}/task$SLURM_PROCID; exec sleep 100'")
    executor.launch(spec)
    tasks = [read_pid(tmp_path / f"task{rank}", timeout_s=10) for rank in (0, 1)]
    executor.cancel(spec.job_id)
    assert exits.wait_for(spec.job_id).state is JobState.CANCELLED
    assert all(gone(pid) for pid in tasks)
