"""Importing Slurm topology.conf: leaf switches become units, the root the spine."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gefion.core.errors import TopologyError
from gefion.core.topology import Cluster
from gefion.formats.slurm_topology import parse_slurm_topology

FIXTURES = Path(__file__).parent / "fixtures"


def parse(text: str, **kw: object) -> Cluster:
    return parse_slurm_topology(textwrap.dedent(text).lstrip("\n"), "topology.conf",
                                **kw)  # type: ignore[arg-type]


def test_the_two_unit_fixture() -> None:
    cluster = parse_slurm_topology((FIXTURES / "two-units.conf").read_text(),
                                   "fixtures/two-units.conf")
    assert cluster.name == "two-units"
    assert cluster.units == ("leaf1", "leaf2") and cluster.spine == "core"
    assert [n.name for n in cluster.nodes_in_unit("leaf1")] == ["gpu01", "gpu02", "gpu03",
                                                                 "gpu04"]
    assert [n.name for n in cluster.nodes_in_unit("leaf2")] == ["gpu05", "gpu06", "gpu07"]
    assert {n.gpus for n in cluster.nodes} == {8}
    assert cluster.total_gpus == 56


def test_gpus_per_node_and_name_are_parameters() -> None:
    cluster = parse("SwitchName=s1 Nodes=n[1-2]\n", gpus_per_node=4, name="lab",
                    gpu_type="a100")
    assert cluster.name == "lab" and cluster.total_gpus == 8
    assert {n.gpu_type for n in cluster.nodes} == {"a100"}


def test_a_three_level_tree_keeps_the_leaves_as_units_and_the_root_as_spine() -> None:
    cluster = parse("""
        SwitchName=root Switches=agg[1-2]
        SwitchName=agg1 Switches=leaf[1-2]
        SwitchName=agg2 Switches=leaf3
        SwitchName=leaf1 Nodes=n[01-02]
        SwitchName=leaf2 Nodes=n[03-04]
        SwitchName=leaf3 Nodes=n[05-06]
    """)
    assert cluster.units == ("leaf1", "leaf2", "leaf3")
    assert cluster.spine == "root"
    assert cluster.nodes_in_unit("leaf3")[0].name == "n05"


@pytest.mark.parametrize(("text", "spine"), [
    pytest.param("SwitchName=s1 Nodes=n1\nSwitchName=s2 Nodes=n2\n", "spine",
                 id="flat-leaves-only"),
    pytest.param("SwitchName=s1 Nodes=n1\n", "spine", id="one-leaf"),
    pytest.param("SwitchName=s1 Nodes=n1\nSwitchName=s2 Nodes=n2\n"
                 "SwitchName=a Switches=s1\nSwitchName=b Switches=s2\n", "spine",
                 id="two-roots"),
])
def test_without_a_single_upper_root_the_spine_is_called_spine(text: str,
                                                               spine: str) -> None:
    assert parse(text).spine == spine


def test_keys_are_case_insensitive_comments_and_continuations_are_handled() -> None:
    cluster = parse("""
        # a comment line
        switchname=s1 NODES=n[1-2] linkspeed=100   # trailing comment
        SWITCHNAME=s2 \\
            Nodes=n3
        SwitchName=top switches=s[1-2]
    """)
    assert cluster.units == ("s1", "s2") and cluster.spine == "top"
    assert [n.name for n in cluster.nodes] == ["n1", "n2", "n3"]


@pytest.mark.parametrize(("text", "line", "field", "message"), [
    pytest.param("""
        SwitchName=s1 Nodes=n[1-4]
        SwitchName=s2 Nodes=n[4-6]
    """, 2, "Nodes", "node 'n4' is under leaf switches 's1' (line 1) and 's2'",
        id="node-in-two-leaves"),
    pytest.param("""
        SwitchName=s1 Nodes=n1
        SwitchName=s2 Nodes=n2 Speed=100
    """, 2, "Speed", "unknown key 'Speed'", id="unknown-key"),
    pytest.param("""
        BlockName=b1 Nodes=n1
    """, 1, "BlockName", "topology/block is not supported", id="block-plugin"),
    pytest.param("""
        # comment

        SwitchName=s1 Nodes=n[04-01]
    """, 3, "Nodes", "bad hostlist expression 'n[04-01]'", id="malformed-node-range"),
    pytest.param("""
        SwitchName=s1 Nodes=n[1-
    """, 1, "Nodes", "'[' is never closed", id="unclosed-node-range"),
    pytest.param("""
        SwitchName=s1 Nodes=n1
        SwitchName=top Switches=s[1-2]
    """, 2, "Switches", "switch 'top' lists unknown switch 's2'", id="unknown-switch"),
    pytest.param("""
        SwitchName=s1 Nodes=n1 Switches=s2
        SwitchName=s2 Nodes=n2
    """, 1, "Switches", "either a leaf (Nodes) or an upper level", id="nodes-and-switches"),
    pytest.param("""
        SwitchName=s1 Nodes=n1
        SwitchName=s1 Nodes=n2
    """, 2, "SwitchName", "switch 's1' is defined twice (first on line 1)",
        id="duplicate-switch"),
    pytest.param("""
        Nodes=n1
    """, 1, "SwitchName", "every line must name its switch", id="missing-switchname"),
    pytest.param("""
        SwitchName=s1 Nodes=
    """, 1, "Nodes", "Nodes needs a value", id="empty-value"),
    pytest.param("""
        SwitchName=s1 Nodes=n1 nodes=n2
    """, 1, "Nodes", "Nodes is given twice", id="key-twice"),
    pytest.param("""
        SwitchName=s1 Nodes=n1
        SwitchName=a Switches=b
        SwitchName=b Switches=a
    """, 2, "Switches", "switches form a cycle", id="cycle"),
    pytest.param("""
        SwitchName=s1 Nodes=n1
        SwitchName=a Switches=s1
        SwitchName=b Switches=s1
    """, 3, "Switches", "switch 's1' is listed under both 'a' and 'b'", id="two-parents"),
])
def test_errors_name_file_line_and_field(text: str, line: int, field: str,
                                         message: str) -> None:
    with pytest.raises(TopologyError) as info:
        parse(text)
    err = info.value
    assert (err.source, err.line, err.field) == ("topology.conf", line, field)
    assert str(err).startswith(f"topology.conf:{line}: field '{field}': ")
    assert message in str(err)


def test_a_file_without_leaf_switches_is_an_error() -> None:
    with pytest.raises(TopologyError, match=r"^topology.conf: .*no leaf switch"):
        parse("# only comments\n")
