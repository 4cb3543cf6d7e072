"""Submission.to_job_spec (total GPUs, defaults, arrays) and to_json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gefion.core.errors import SpecError
from gefion.core.jobs import Dependency, DependencyKind, JobSpec
from gefion.slurm import SbatchError, Submission, parse_submission


def submission(*directives: str, argv: tuple[str, ...] = ()) -> Submission:
    text = "#!/bin/bash\n" + "".join(d + "\n" for d in directives) + "srun x\n"
    return parse_submission(text, source="job.sh", argv=argv)


def spec_of(*directives: str, **kw: Any) -> JobSpec:
    return submission(*directives).to_job_spec(
        user="ada", default_project="default", default_time_limit_s=3_600, **kw)


SPECS: list[Any] = [
    pytest.param(["-G 4"], {"gpus": 4, "nodes": None, "gpus_per_node": None},
                 id="from-gpus"),
    pytest.param(["-N 4 --gpus-per-node=8"], {"gpus": 32, "nodes": 4, "gpus_per_node": 8},
                 id="nodes-times-gpus-per-node"),
    pytest.param(["-N 3 --gres=gpu:h100:2"], {"gpus": 6, "nodes": 3, "gpus_per_node": 2},
                 id="gres-per-node-times-nodes"),
    pytest.param(["--gres=gpu:2"], {"gpus": 2, "nodes": None, "gpus_per_node": 2},
                 id="gres-one-node"),
    pytest.param(["-n 4 --gpus-per-task=2"], {"gpus": 8, "gpus_per_node": None},
                 id="ntasks-times-gpus-per-task"),
    pytest.param(["-N 2 --ntasks-per-node=4 --gpus-per-task=2"],
                 {"gpus": 16, "nodes": 2, "gpus_per_node": 8}, id="tasks-per-node-times-gpt"),
    pytest.param(["-N 2 --gpus-per-task=1"], {"gpus": 2, "nodes": 2},
                 id="one-task-per-node-by-default"),
    pytest.param(["-G 16 -N 2"], {"gpus": 16, "nodes": 2}, id="gpus-over-nodes"),
    pytest.param([], {"gpus": 0, "project": "default", "time_limit_s": 3_600, "qos": "normal",
                      "name": "job.sh", "user": "ada", "exclusive": False},
                 id="defaults"),
    pytest.param(["-t UNLIMITED"], {"time_limit_s": 3_600}, id="unlimited-takes-default"),
    pytest.param(["-A ml -q high -t 30 -J t"],
                 {"project": "ml", "qos": "high", "time_limit_s": 1_800, "name": "t"},
                 id="account-is-project"),
    pytest.param(["--exclusive -G 2"], {"exclusive": True, "gpus": 2}, id="exclusive"),
    pytest.param(["--reservation=r1"], {"reservation": "r1"}, id="reservation"),
    pytest.param(["-d afterany:7"], {"depends_on": (Dependency(DependencyKind.AFTERANY, "7"),)},
                 id="dependencies"),
]


@pytest.mark.parametrize(("directives", "expected"), SPECS)
def test_to_job_spec(directives: list[str], expected: dict[str, object]) -> None:
    spec = spec_of(*(f"#SBATCH {d}" for d in directives))
    assert {k: getattr(spec, k) for k in expected} == expected


def test_exclusive_takes_whole_nodes_in_the_core_shape() -> None:
    assert spec_of("#SBATCH --exclusive -G 2").shape(8).gpus_per_node == 8


def test_array_task_spec() -> None:
    sub = submission("#SBATCH --array=0-6:3")
    assert sub.to_job_spec(user="u", default_project="p", default_time_limit_s=60,
                           array_index=3).array_index == 3
    with pytest.raises(SbatchError, match="array index 4 is not in --array=0-6:3"):
        sub.to_job_spec(user="u", default_project="p", default_time_limit_s=60, array_index=4)
    with pytest.raises(SbatchError, match="not in --array=None"):
        submission().to_job_spec(user="u", default_project="p", default_time_limit_s=60,
                                 array_index=0)


def test_a_layout_the_given_node_size_cannot_take_is_located_at_the_script() -> None:
    with pytest.raises(SpecError) as info:
        spec_of("#SBATCH --gpus-per-node=8", node_gpus=4)
    assert info.value.source == "job.sh"
    assert "8 GPUs per node, but nodes have 4" in str(info.value)


REQUIRED_KEYS = {"name", "nodes", "gpus", "gpus_per_node", "time_limit_s", "project", "qos",
                 "array", "dependencies", "output", "error", "chdir", "warnings"}


def test_to_json_has_every_key_and_is_serialisable() -> None:
    sub = submission("#SBATCH -J t -N 2 --gpus-per-node=4 -t 1-0 -A p -q high",
                     "#SBATCH --array=1-3%1 -d afterok:5 -o o.%j -D /w --mail-type=END",
                     "#SBATCH --signal=B:USR1@30 --export=ALL,X=1 --mem=1G")
    data = sub.to_json()
    assert data.keys() >= REQUIRED_KEYS
    assert "script" not in data
    assert json.loads(json.dumps(data)) == data
    assert {k: data[k] for k in ("name", "nodes", "gpus", "gpus_per_node", "total_gpus",
                                 "time_limit_s", "time_limit", "project", "qos", "array",
                                 "array_tasks", "dependencies", "output", "error", "chdir",
                                 "signal", "export", "mem_mb")} == {
        "name": "t", "nodes": 2, "gpus": None, "gpus_per_node": 4, "total_gpus": 8,
        "time_limit_s": 86_400, "time_limit": "1-00:00:00", "project": "p", "qos": "high",
        "array": "1-3%1", "array_tasks": 3, "dependencies": ["afterok:5"],
        "output": "o.%j", "error": "o.%j", "chdir": "/w",
        "signal": {"number": 10, "time_s": 30, "batch_only": True},
        "export": {"inherit": True, "variables": {"X": "1"}}, "mem_mb": 1_024,
    }
    assert data["warnings"] == [{"source": "job.sh", "line": 3, "option": "--mail-type",
                                 "message": "no mail is sent: this site has no mail service"}]


def test_to_json_of_an_empty_request() -> None:
    data = submission().to_json()
    assert (data["array"], data["time_limit"], data["signal"], data["warnings"]) == (
        None, "UNLIMITED", None, [])
