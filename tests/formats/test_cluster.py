"""load_cluster: presets, topology YAML files and Slurm topology.conf files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gefion.core.errors import TopologyError
from gefion.formats.cluster import load_cluster

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_gefion_preset() -> None:
    cluster = load_cluster("gefion")
    names = [n.name for n in cluster.nodes]
    assert len(names) == 191
    assert names == [f"dgx{i:03d}" for i in range(1, 192)]
    assert cluster.units == ("su1", "su2", "su3", "su4", "su5", "su6")
    assert {n.su for n in cluster.nodes[:32]} == {"su1"}  # dgx001–dgx032
    assert [n.name for n in cluster.nodes_in_unit("su1")] == names[:32]
    assert [n.name for n in cluster.nodes_in_unit("su6")] == [
        f"dgx{i:03d}" for i in range(161, 192)]  # dgx161–dgx191: 31 nodes
    assert cluster.total_gpus == 1528
    assert {n.gpus for n in cluster.nodes} == {8}


@pytest.mark.parametrize(("ref", "nodes", "gpus", "units"), [
    pytest.param("superpod:1", 31, 248, 1, id="superpod-1"),
    pytest.param("superpod:2", 63, 504, 2, id="superpod-2"),
    pytest.param("synthetic:12500x8", 12_500, 100_000, 391, id="synthetic-100k-gpus"),
    pytest.param("synthetic:100x4:10", 100, 400, 10, id="synthetic-unit-size"),
])
def test_other_presets(ref: str, nodes: int, gpus: int, units: int) -> None:
    cluster = load_cluster(ref)
    assert (len(cluster.nodes), cluster.total_gpus, len(cluster.units)) == (nodes, gpus, units)


def test_a_preset_name_wins_over_a_file_of_the_same_name(tmp_path: Path) -> None:
    (tmp_path / "gefion").write_text("units: []\n")
    assert len(load_cluster("gefion", base_dir=tmp_path).nodes) == 191


def test_a_yaml_file_relative_to_base_dir() -> None:
    cluster = load_cluster("fixtures/two-units.yaml", base_dir=FIXTURES.parent)
    assert cluster.name == "mini" and len(cluster.nodes) == 7


def test_a_conf_file_is_read_as_slurm_topology() -> None:
    cluster = load_cluster(str(FIXTURES / "two-units.conf"), gpus_per_node=4)
    assert cluster.units == ("leaf1", "leaf2") and cluster.total_gpus == 28


def test_any_other_extension_is_topology_yaml(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "two-units.yaml", tmp_path / "cluster.topo")
    assert load_cluster("cluster.topo", base_dir=tmp_path).name == "mini"


def test_errors_in_a_file_name_the_file_as_found(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("units:\n  - {name: su1, nodes: 'n[2-1]'}\n")
    with pytest.raises(TopologyError) as info:
        load_cluster("bad.yaml", base_dir=tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'bad.yaml'}:2: field 'units[0].nodes': ")


def test_a_missing_file_is_named() -> None:
    with pytest.raises(TopologyError, match=r"no such topology file: '.*nowhere\.yaml'"):
        load_cluster("nowhere.yaml", base_dir=FIXTURES)


@pytest.mark.parametrize(("ref", "message"), [
    pytest.param("gefon", "unknown cluster preset 'gefon'; expected one of gefion, "
                          "superpod:N", id="misspelt-preset"),
    pytest.param("superpod:x", "unknown cluster preset 'superpod:x'", id="bad-superpod"),
    pytest.param("superpod:0", "at least one scalable unit", id="empty-superpod"),
    pytest.param("synthetic:20000x8", "synthetic clusters have 1..12500 nodes",
                 id="too-large"),
])
def test_bad_preset_names_list_the_presets(ref: str, message: str) -> None:
    with pytest.raises(TopologyError) as info:
        load_cluster(ref, base_dir=FIXTURES)
    assert message in str(info.value)
