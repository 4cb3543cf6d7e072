"""The topology YAML format: units, defaults and overrides, presets, located errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gefion.core.errors import TopologyError
from gefion.core.topology import Cluster
from gefion.formats.topology_yaml import parse_topology

FIXTURES = Path(__file__).parent / "fixtures"


def parse(text: str, source: str = "topo.yaml") -> Cluster:
    return parse_topology(textwrap.dedent(text).lstrip("\n"), source)


def test_the_two_unit_fixture() -> None:
    cluster = parse_topology((FIXTURES / "two-units.yaml").read_text(), "two-units.yaml")
    assert cluster.name == "mini" and cluster.spine == "core"
    assert cluster.units == ("su1", "su2")
    assert [n.name for n in cluster.nodes] == [f"gpu0{i}" for i in range(1, 8)]
    assert [n.su for n in cluster.nodes] == ["su1"] * 4 + ["su2"] * 3
    assert [n.gpus for n in cluster.nodes] == [8] * 4 + [4] * 3
    assert {n.gpu_type for n in cluster.nodes_in_unit("su2")} == {"a100"}
    assert cluster.total_gpus == 44


def test_defaults_of_the_defaults_are_dgx_h100_nodes() -> None:
    cluster = parse("""
        units:
          - {name: a, nodes: "n[1-2]"}
    """, source="conf/small.yaml")
    node = cluster.nodes[0]
    assert (node.gpus, node.cpus, node.memory_gb, node.gpu_type) == (8, 224, 2048, "h100")
    assert cluster.name == "small"  # the file name without its extension
    assert cluster.spine == "spine"


def test_a_unit_may_list_hostlist_expressions_and_names() -> None:
    cluster = parse("""
        units:
          - name: su1
            nodes: ["dgx[001-002]", dgx010]
    """)
    assert [n.name for n in cluster.nodes] == ["dgx001", "dgx002", "dgx010"]


def test_a_preset_file() -> None:
    cluster = parse("preset: gefion\n")
    assert cluster.name == "gefion" and len(cluster.nodes) == 191
    renamed = parse("preset: superpod:2\nname: lab\n")
    assert renamed.name == "lab" and len(renamed.nodes) == 63


@pytest.mark.parametrize(("text", "line", "field", "message"), [
    pytest.param("""
        units:
          - name: su1
            nodes: "n[1-2]"
            gpu: 4
    """, 4, "units[0].gpu", "unknown field (did you mean 'gpus'?)", id="unknown-unit-key"),
    pytest.param("""
        name: x
        spine: s
    """, 1, "units", "is required", id="missing-units"),
    pytest.param("""
        name: x
        unit: []
    """, 2, "unit", "unknown field (did you mean 'units'?)", id="misspelt-units"),
    pytest.param("""
        units:
          - name: su1
            nodes: "n[1-2]"
            gpus: -8
    """, 4, "units[0].gpus", "must be a whole number >= 0, got -8", id="negative-gpus"),
    pytest.param("""
        defaults:
          gpus: 8
          memory_gb: -1
        units:
          - {name: su1, nodes: "n[1-2]"}
    """, 3, "defaults.memory_gb", "must be a whole number >= 0, got -1",
        id="negative-default"),
    pytest.param("""
        units:
          - name: su1
            nodes: "n[1-4]"
          - name: su2
            nodes:
              - n5
              - n3
    """, 7, "units[1].nodes[1]", "node 'n3' is already in unit 'su1' (units[0])",
        id="duplicate-node-across-units"),
    pytest.param("""
        units:
          - name: su1
            nodes: "n[1-4],n2"
    """, 3, "units[0].nodes", "node 'n2' is already in unit 'su1' (units[0])",
        id="duplicate-node-in-one-unit"),
    pytest.param("""
        units:
          - {name: su1, nodes: n1}
          - {name: su1, nodes: n2}
    """, 3, "units[1].name", "duplicate scalable unit 'su1' (first on line 2)",
        id="duplicate-unit"),
    pytest.param("""
        units:
          - name: su1
            nodes: "n[4-1]"
    """, 3, "units[0].nodes", "bad hostlist expression 'n[4-1]': range 4-1 runs backwards",
        id="backwards-range"),
    pytest.param("""
        units:
          - name: su1
            nodes: []
    """, 3, "units[0].nodes", "must name at least one node", id="unit-without-nodes"),
    pytest.param("""
        units: []
    """, 1, "units", "must list at least one scalable unit", id="no-units"),
    pytest.param("""
        units:
          - {name: su1, nodes: 17}
    """, 2, "units[0].nodes", "must be a list, got 17", id="nodes-not-a-string"),
    pytest.param("""
        preset: superpod:zero
    """, 1, "preset", "unknown cluster preset 'superpod:zero'", id="unknown-preset"),
    pytest.param("""
        preset: gefion
        units: []
    """, 2, "units", "unknown field", id="preset-with-units"),
    pytest.param("""
        units:
          - name: su1
            nodes: [n1
    """, 4, None, "invalid YAML", id="malformed-yaml"),
])
def test_errors_name_file_line_and_field(text: str, line: int, field: str | None,
                                         message: str) -> None:
    with pytest.raises(TopologyError) as info:
        parse(text)
    err = info.value
    assert (err.source, err.line, err.field) == ("topo.yaml", line, field)
    prefix = f"topo.yaml:{line}: " + (f"field '{field}': " if field else "")
    assert str(err).startswith(prefix)
    assert message in str(err)


def test_the_yaml_in_the_topology_doc_parses() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "topology.md").read_text()
    blocks = [b.split("```", 1)[0] for b in doc.split("```yaml\n")[1:]]
    clusters = [parse_topology(b, "doc.yaml") for b in blocks]
    assert [c.name for c in clusters] == ["mycluster", "lab"]
    assert len(clusters[0].nodes) == 40 and clusters[0].nodes_in_unit("su2")[0].gpus == 4
