"""--output/--error filename patterns, expanded as Slurm's expand_stdio_fields does."""

from __future__ import annotations

import pytest

from gefion.slurm.patterns import DEFAULT_ARRAY_OUTPUT, DEFAULT_OUTPUT, expand_pattern

JOB: dict[str, int | None] = {}
TASK: dict[str, int | None] = {"array_job_id": 100, "array_task_id": 7}


def expand(pattern: str, array: dict[str, int | None]) -> str:
    """``pattern`` for job 128 "train" of user ada on dgx001, with ``array`` ids if any."""
    return expand_pattern(pattern, job_id=128, name="train", user="ada", node="dgx001",
                          node_id=0, array_job_id=array.get("array_job_id"),
                          array_task_id=array.get("array_task_id"))


@pytest.mark.parametrize(("pattern", "job", "expanded"), [
    pytest.param("slurm-%j.out", JOB, "slurm-128.out", id="job-id"),
    pytest.param("%J.out", JOB, "128.out", id="jobid-stepid-is-job-id-for-batch"),
    pytest.param("%x-%u.log", JOB, "train-ada.log", id="name-and-user"),
    pytest.param("%N-%n-%t-%s", JOB, "dgx001-0-0-batch", id="node-rank-step"),
    pytest.param("slurm-%A_%a.out", TASK, "slurm-100_7.out", id="array-master-and-task"),
    pytest.param("%A_%a", JOB, "128_4294967294", id="no-array-as-slurm-prints-it"),
    pytest.param("%b", {**TASK, "array_task_id": 17}, "7", id="task-modulo-ten"),
    pytest.param("job%4j.out", JOB, "job0128.out", id="pad-job-id"),
    pytest.param("%3a", TASK, "007", id="pad-task-id"),
    pytest.param("job%2j-%2t.out", JOB, "job128-00.out", id="man-page-example"),
    pytest.param("%12j", JOB, "0000000128", id="pad-capped-at-ten"),
    pytest.param("%5N", JOB, "dgx001", id="pad-ignored-for-text"),
    pytest.param("100%%", JOB, "100%", id="percent-percent"),
    pytest.param("%z.out", JOB, "%z.out", id="unknown-left-as-is"),
    pytest.param("%3z", JOB, "3z", id="unknown-after-pad-loses-percent"),
    pytest.param("%05j", JOB, "5j", id="zero-led-pad-under-ten-misread"),
    pytest.param("out%", JOB, "out", id="trailing-percent-dropped"),
    pytest.param("a\\%j", JOB, "a%j", id="backslash-disables-expansion"),
    pytest.param("/abs/%j", JOB, "/abs/128", id="absolute-path"),
])
def test_expand(pattern: str, job: dict[str, int | None], expanded: str) -> None:
    assert expand(pattern, job) == expanded


def test_defaults_are_slurms() -> None:
    assert expand(DEFAULT_OUTPUT, JOB) == "slurm-128.out"
    assert expand(DEFAULT_ARRAY_OUTPUT, TASK) == "slurm-100_7.out"
