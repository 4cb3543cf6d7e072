"""The site rule: no effect → accepted with a warning; cannot be honoured → refused."""

from __future__ import annotations

from typing import Any

import pytest

from gefion.slurm import SbatchError, Site, parse_submission
from gefion.slurm.errors import COMMAND_LINE


def script(*directives: str) -> str:
    return "#!/bin/bash\n" + "".join(d + "\n" for d in directives) + "srun x\n"


WARNED: list[Any] = [
    pytest.param("#SBATCH --mail-type=END,FAIL", "--mail-type", "no mail service",
                 id="mail-type"),
    pytest.param("#SBATCH --mail-user=ada@example.org", "--mail-user", "no mail service",
                 id="mail-user"),
    pytest.param("#SBATCH --hint=nomultithread", "--hint", "no effect under the local executor",
                 id="hint"),
    pytest.param("#SBATCH --gpu-bind=closest", "--gpu-bind", "no effect under the local",
                 id="gpu-bind"),
    pytest.param("#SBATCH -N 2-4", "--nodes", "2 nodes, never up to 4", id="node-range"),
    pytest.param("#SBATCH --signal=R:USR1", "--signal", "R: has no effect", id="signal-R"),
    pytest.param("#SBATCH -d afterok:1?afterok:2", "--dependency", "read as ',' (all of)",
                 id="dependency-any-of"),
    pytest.param("#SBATCH -d afterok:1+60", "--dependency", "'+time' delays",
                 id="dependency-delay"),
    pytest.param("#SBATCH --mem-per-gpu=10G", "--mem-per-gpu", "asks for no GPUs",
                 id="mem-per-gpu-without-gpus"),
    pytest.param("#SBATCH -v", "--verbose", "no effect", id="verbose"),
    pytest.param("#SBATCH --quiet", "--quiet", "no effect", id="quiet"),
]


@pytest.mark.parametrize(("directive", "option", "why"), WARNED)
def test_no_effect_is_a_visible_warning(directive: str, option: str, why: str) -> None:
    sub = parse_submission(script(directive), source="job.sh")
    assert [(w.source, w.line, w.option) for w in sub.warnings] == [("job.sh", 2, option)]
    assert why in sub.warnings[0].message
    assert str(sub.warnings[0]).startswith(f"job.sh:2: {option}: ")


def test_mail_type_and_user_together_warn_once() -> None:
    sub = parse_submission(script("#SBATCH --mail-type=ALL --mail-user=ada@example.org"))
    assert [w.option for w in sub.warnings] == ["--mail-type"]


def test_mail_type_none_asks_for_nothing_and_is_not_warned_about() -> None:
    assert parse_submission(script("#SBATCH --mail-type=NONE")).warnings == ()


def test_an_overridden_directive_is_not_warned_about() -> None:
    sub = parse_submission(script("#SBATCH -N 2-4"), argv=["-N", "2"])
    assert sub.warnings == ()


def test_a_flag_warning_is_located_on_the_command_line() -> None:
    sub = parse_submission(script(), argv=["--mail-type=END"])
    assert [(w.source, w.line) for w in sub.warnings] == [(COMMAND_LINE, None)]


def test_a_plain_script_has_no_warnings() -> None:
    assert parse_submission(script("#SBATCH -N 1 -G 8 -t 60")).warnings == ()


REFUSED: list[Any] = [
    pytest.param("#SBATCH --mem=3T", "--mem", "cannot be honoured: --mem=3T exceeds a node's 2048G",
                 id="mem-above-node"),
    pytest.param("#SBATCH -G 8 --mem-per-gpu=300G", "--mem-per-gpu",
                 "--mem-per-gpu=300G × 8 GPUs per node exceeds a node's 2048G",
                 id="mem-per-gpu-above-node"),
    pytest.param("#SBATCH --mem=1G --mem-per-gpu=1G -G 1", "--mem-per-gpu",
                 "mutually exclusive", id="mem-and-mem-per-gpu"),
    pytest.param("#SBATCH --gres=gpu:a100:2", "--gres",
                 "cannot be honoured: --gres=gpu:a100:2 names GPU type 'a100'; this site has h100",
                 id="gres-wrong-gpu-type"),
    pytest.param("#SBATCH -G a100:1", "--gpus", "names GPU type 'a100'", id="gpus-wrong-type"),
    pytest.param("#SBATCH --gres=nvme:1", "--gres", "no generic resource 'nvme'",
                 id="gres-not-gpu"),
    pytest.param("#SBATCH --gpus-per-node=16", "--gpus-per-node",
                 "asks 16 GPUs per node; a node has 8", id="gpn-above-node"),
    pytest.param("#SBATCH --gres=gpu:9", "--gres", "asks 9 GPUs per node", id="gres-above-node"),
    pytest.param("#SBATCH -N 1 -G 16", "--gpus", "16 GPUs per node, but nodes have 8",
                 id="gpus-on-too-few-nodes"),
    pytest.param("#SBATCH -N 4 -G 10", "--gpus", "does not split evenly over 4 nodes",
                 id="gpus-uneven-over-nodes"),
    pytest.param("#SBATCH -G 9", "--gpus", "does not split evenly", id="gpus-uneven-gang"),
    pytest.param("#SBATCH --gres=gpu:2 --gpus-per-node=4", "--gres", "disagree",
                 id="gres-and-gpn-disagree"),
    pytest.param("#SBATCH --ntasks-per-node=4 --gpus-per-task=4", "--gpus-per-task",
                 "asks 16 GPUs per node", id="gpus-per-task-above-node"),
    pytest.param("#SBATCH -n 8 --ntasks-per-node=8 --gpus-per-task=2", "--gpus-per-task",
                 "× --ntasks-per-node=8 exceeds a node's 8 GPUs", id="gpt-times-tpn"),
    pytest.param("#SBATCH --ntasks-per-node=8 -c 16", "--ntasks-per-node",
                 "× --cpus-per-task=16 exceeds a node's 112 CPUs", id="cpus-above-node"),
    pytest.param("#SBATCH -c 113", "--cpus-per-task", "exceeds a node's 112 CPUs",
                 id="cpus-per-task-above-node"),
    pytest.param("#SBATCH --ntasks-per-node=200", "--ntasks-per-node", "112 CPUs",
                 id="tasks-above-cpus"),
    pytest.param("#SBATCH -p cpu", "--partition", "--partition=cpu names no partition",
                 id="unknown-partition"),
    pytest.param("#SBATCH -p gpu,debug", "--partition", "names no partition",
                 id="unknown-partition-in-list"),
    pytest.param("#SBATCH -q urgent", "--qos", "--qos=urgent names no QOS here", id="unknown-qos"),
    pytest.param("#SBATCH -C a100", "--constraint", "names feature 'a100', which no node has",
                 id="unknown-feature"),
    pytest.param("#SBATCH -C '[h100|ib]'", "--constraint", "names feature 'ib'",
                 id="unknown-feature-in-expression"),
    pytest.param("#SBATCH --begin=16:00", "--begin", "deferred starts are not supported",
                 id="begin-later"),
    pytest.param("#SBATCH --exclusive=user", "--exclusive", "only a bare --exclusive",
                 id="exclusive-user"),
]


@pytest.mark.parametrize(("directive", "option", "why"), REFUSED)
def test_cannot_be_honoured_is_refused_with_file_line_and_reason(
        directive: str, option: str, why: str) -> None:
    with pytest.raises(SbatchError) as info:
        parse_submission(script("#SBATCH -J x", directive), source="job.sh")
    err = info.value
    assert (err.source, err.line, err.field) == ("job.sh", 3, option)
    assert why in str(err)


def test_refusal_points_at_the_occurrence_that_won() -> None:
    with pytest.raises(SbatchError) as info:
        parse_submission(script("#SBATCH --mem=1G"), source="job.sh", argv=["--mem=3T"])
    assert (info.value.source, info.value.line) == (COMMAND_LINE, None)


def test_a_site_with_other_gpus_and_names() -> None:
    site = Site(gpu_types=("a100",), partitions=("batch", "debug"), qos=("low",),
                features=("ib",), node_gpus=4, node_names=("n1", "n2"))
    sub = parse_submission(script("#SBATCH --gres=gpu:a100:4 -N 2 -p debug -q low -C ib",
                                  "#SBATCH -x n1"), site=site)
    assert (sub.total_gpus, sub.partition, sub.qos, sub.exclude) == (8, "debug", "low", ("n1",))
    assert parse_submission(script(), site=site).partition == "batch"
    with pytest.raises(SbatchError, match="names unknown nodes n9"):
        parse_submission(script("#SBATCH -x n[1-2],n9"), site=site)
    with pytest.raises(SbatchError, match="more nodes than the 2"):
        parse_submission(script("#SBATCH -N 3"), site=site)
    with pytest.raises(SbatchError, match="a node has 4"):
        parse_submission(script("#SBATCH --gpus-per-node=8"), site=site)


def test_exclude_is_not_checked_when_node_names_are_unknown() -> None:
    assert parse_submission(script("#SBATCH -x whatever1")).exclude == ("whatever1",)
