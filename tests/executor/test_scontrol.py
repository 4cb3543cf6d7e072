"""``scontrol`` inside a job: hostnames and the current job's record, nothing else."""

from __future__ import annotations

import pytest

from gefion.executor.scontrol import main

ENV = {"SLURM_JOB_ID": "12", "SLURM_JOB_NAME": "train", "SLURM_JOB_NODELIST": "dgx[001-003]",
       "SLURM_JOB_USER": "alice", "SLURM_JOB_UID": "1000", "SLURM_GPUS_ON_NODE": "8"}


@pytest.mark.parametrize(("argv", "out"), [
    pytest.param(["show", "hostnames"], "dgx001\ndgx002\ndgx003\n", id="the-jobs-nodes"),
    pytest.param(["show", "hostname", "n[1-2],x"], "n1\nn2\nx\n", id="a-given-list"),
])
def test_show_hostnames(argv: list[str], out: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv, ENV) == 0
    assert capsys.readouterr().out == out


def test_show_job_prints_the_current_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "job"], ENV) == 0
    record = capsys.readouterr().out
    assert record.startswith("JobId=12 JobName=train\n   UserId=alice(1000)")
    assert "NodeList=dgx[001-003]" in record and "TRES=gres/gpu=8" in record


@pytest.mark.parametrize(("argv", "env", "message"), [
    pytest.param(["show", "job", "13"], ENV, "knows only the current job", id="another-job"),
    pytest.param(["update", "job", "12"], ENV, "'update job 12' is not supported",
                 id="unsupported-command"),
    pytest.param(["show", "hostnames", "n[2-1]"], ENV, "bad hostlist expression",
                 id="bad-hostlist"),
    pytest.param(["show", "hostnames"], {}, "SLURM_JOB_NODELIST is not set", id="outside-a-job"),
])
def test_refusals_say_why(argv: list[str], env: dict[str, str], message: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv, env) == 1
    assert message in capsys.readouterr().err
