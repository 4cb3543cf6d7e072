"""LaunchSpec validation and JobExit's sacct form."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from gefion.core.errors import GefionError
from gefion.core.jobs import JobState
from gefion.executor.errors import ExecutorError
from gefion.executor.spec import JobExit, LaunchSpec

BASE: dict[str, Any] = {"job_id": 1, "name": "j", "user": "alice", "script": "#!/bin/sh\n",
                        "workdir": "/w", "node": "n1", "stdout_path": "o", "stderr_path": "e"}


def test_defaults() -> None:
    spec = LaunchSpec(**BASE)
    assert (spec.nodelist, spec.submit_dir, spec.kill_grace_s) == (("n1",), "/w", 30)


@pytest.mark.parametrize(("fields", "message"), [
    pytest.param({"job_id": 0}, "job_id must be a whole number > 0", id="job-id"),
    pytest.param({"script": "echo hi\n"}, "must start with '#!'", id="no-interpreter-line"),
    pytest.param({"user": ""}, "user is empty", id="no-user"),
    pytest.param({"nodelist": ("n2",)}, "node 'n1' is not in the nodelist", id="node-not-listed"),
    pytest.param({"gpus": (0, 0)}, "gpus must be distinct", id="duplicate-gpu"),
    pytest.param({"open_mode": "w"}, "open_mode must be", id="open-mode"),
    pytest.param({"time_limit_s": 0}, "time_limit_s must be > 0", id="zero-limit"),
    pytest.param({"signal": (signal.SIGKILL, 10)}, "cannot be sent", id="sigkill-signal"),
    pytest.param({"array_job_id": 3}, "go together", id="half-an-array-id"),
    pytest.param({"nodelist": ("n1", "n2")}, "ntasks=1 is fewer than the 2 nodes",
                 id="fewer-tasks-than-nodes"),
    pytest.param({"env": {"A=B": "x"}}, "need a name without '='", id="bad-env-name"),
    pytest.param({"extra_env": {"A": 1}}, "text values", id="non-text-env-value"),
])
def test_bad_specs_are_refused_with_the_field_named(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ExecutorError, match=message) as info:
        LaunchSpec(**{**BASE, **fields})
    assert isinstance(info.value, GefionError)
    assert str(info.value).startswith("job ")


@pytest.mark.parametrize(("exit_code", "sig", "text"), [
    pytest.param(0, None, "0:0", id="success"),
    pytest.param(3, None, "3:0", id="exit-3"),
    pytest.param(0, 9, "0:9", id="sigkill"),
])
def test_sacct_exit_code(exit_code: int, sig: int | None, text: str) -> None:
    end = JobExit(1, JobState.FAILED, exit_code, sig, 0.0, 1.0)
    assert end.sacct_exit_code == text
    assert JobExit.from_json({"job_id": 1, "state": "FAILED", "exit_code": exit_code,
                              "signal": sig, "start_ts": 0.0, "end_ts": 1.0}) == end
