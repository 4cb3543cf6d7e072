"""JobSpec validation, shape resolution, the state machine and dependency parsing."""

from __future__ import annotations

from typing import Any

import pytest

from gefion.core.errors import SpecError, StateError
from gefion.core.jobs import (
    Dependency,
    DependencyKind,
    JobSpec,
    JobState,
    Shape,
    check_transition,
)

SHAPES = [
    ("one GPU", {"gpus": 1}, Shape(1, 1)),
    ("a whole node", {"gpus": 8}, Shape(1, 8)),
    ("a gang of whole nodes", {"gpus": 256}, Shape(32, 8)),
    ("an even split over fewer than full nodes", {"gpus": 12}, Shape(2, 6)),
    ("explicit nodes", {"gpus": 8, "nodes": 2}, Shape(2, 4)),
    ("explicit gpus per node", {"gpus": 16, "gpus_per_node": 4}, Shape(4, 4)),
    ("exclusive takes whole nodes", {"gpus": 2, "exclusive": True}, Shape(1, 8)),
    ("CPU-only", {"gpus": 0}, Shape(1, 0)),
]


@pytest.mark.parametrize(("name", "kw", "shape"), SHAPES, ids=[s[0] for s in SHAPES])
def test_shape(name: str, kw: dict[str, Any], shape: Shape) -> None:
    assert JobSpec(time_limit_s=60, project="p", **kw).shape(8) == shape


BAD_SPECS = [
    ("negative GPUs", {"gpus": -4}, "gpus"),
    ("zero time limit", {"gpus": 1, "time_limit_s": 0}, "time_limit"),
    ("no project", {"gpus": 1, "project": ""}, "project"),
    ("zero nodes", {"gpus": 1, "nodes": 0}, "nodes"),
    ("nodes × gpus per node mismatch", {"gpus": 10, "nodes": 2, "gpus_per_node": 4}, "gpus"),
    ("negative grace", {"gpus": 1, "grace_s": -1}, "grace"),
    ("bad topology constraint", {"gpus": 1, "same_su": "sometimes"}, "same_su"),
]


@pytest.mark.parametrize(("name", "kw", "field"), BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_spec_names_the_field(name: str, kw: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"time_limit_s": 60, "project": "p"} | kw
    with pytest.raises(SpecError) as err:
        JobSpec(**args)
    assert err.value.field == field


@pytest.mark.parametrize(("kw", "node_gpus"), [
    ({"gpus": 13}, 8),             # 13 over 2 nodes does not split evenly
    ({"gpus": 16, "gpus_per_node": 16}, 8),
    ({"gpus": 9, "nodes": 3}, 2),  # 3 per node on 2-GPU nodes
])
def test_shape_that_cannot_be_laid_out(kw: dict[str, Any], node_gpus: int) -> None:
    with pytest.raises(SpecError):
        JobSpec(time_limit_s=60, project="p", **kw).shape(node_gpus)


LEGAL = [
    (JobState.PENDING, JobState.RUNNING), (JobState.PENDING, JobState.CANCELLED),
    (JobState.RUNNING, JobState.COMPLETED), (JobState.RUNNING, JobState.FAILED),
    (JobState.RUNNING, JobState.TIMEOUT), (JobState.RUNNING, JobState.CANCELLED),
    (JobState.RUNNING, JobState.PREEMPTED), (JobState.RUNNING, JobState.NODE_FAIL),
    (JobState.PREEMPTED, JobState.PENDING), (JobState.NODE_FAIL, JobState.PENDING),
]
ILLEGAL = [
    (JobState.COMPLETED, JobState.RUNNING), (JobState.PENDING, JobState.COMPLETED),
    (JobState.FAILED, JobState.PENDING), (JobState.TIMEOUT, JobState.RUNNING),
    (JobState.PREEMPTED, JobState.RUNNING), (JobState.CANCELLED, JobState.PENDING),
]


@pytest.mark.parametrize(("a", "b"), LEGAL)
def test_legal_transitions(a: JobState, b: JobState) -> None:
    assert check_transition(a, b) is b


@pytest.mark.parametrize(("a", "b"), ILLEGAL)
def test_illegal_transitions_raise(a: JobState, b: JobState) -> None:
    with pytest.raises(StateError):
        check_transition(a, b)


def test_terminal_states() -> None:
    assert {s for s in JobState if s.terminal} == {
        JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT}


@pytest.mark.parametrize(("text", "expected"), [
    ("afterok:12", [("afterok", "12")]),
    ("afterok:12:13,afterany:14", [("afterok", "12"), ("afterok", "13"), ("afterany", "14")]),
    ("afternotok:7?singleton", [("afternotok", "7"), ("singleton", None)]),
    ("AFTEROK:5+60", [("afterok", "5")]),
])
def test_dependency_parse(text: str, expected: list[tuple[str, str | None]]) -> None:
    assert [(d.kind.value, d.job_id) for d in Dependency.parse(text)] == expected


@pytest.mark.parametrize("text", ["after:1", "afterok", "singleton:3", "bogus:1"])
def test_bad_dependency(text: str) -> None:
    with pytest.raises(SpecError):
        Dependency.parse(text)


def test_singleton_kind() -> None:
    assert Dependency(DependencyKind.SINGLETON).job_id is None
