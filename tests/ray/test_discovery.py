"""Ray's node table as Gefion nodes, with fake tables (no Ray): names and units from labels
or a topology file, GPUs from resources, incarnations followed by name, changes reported
once; and the rendezvous variables of a gang."""

from __future__ import annotations

from typing import Any

import pytest

from gefion.core.errors import TopologyError
from gefion.core.topology import Cluster, Node
from gefion.executor.base import NodeChange
from gefion.executor.placement import place_tasks
from gefion.executor.ray.discovery import current, discover_cluster, ray_nodes
from gefion.executor.ray.nodes import NodeTable
from gefion.executor.ray.rendezvous import batch_rendezvous, task_rendezvous


def row(node_id: str, *, alive: bool = True, gpus: int = 8, host: str = "host",
        **labels: str) -> dict[str, Any]:
    return {"NodeID": node_id, "Alive": alive, "NodeManagerAddress": f"10.0.0.{node_id[-1]}",
            "NodeManagerHostname": host, "Resources": {"CPU": 4.0, "GPU": float(gpus)}
            if alive else {}, "Labels": {k.replace("__", "."): v for k, v in labels.items()}}


def labelled(node_id: str, name: str, unit: str = "", **kw: Any) -> dict[str, Any]:
    labels = {"gefion.io/node": name}
    if unit:
        labels["gefion.io/unit"] = unit
    return {**row(node_id, **kw), "Labels": labels}


@pytest.mark.parametrize(("table", "expected"), [
    ([labelled("a1", "dgx002", "su2"), labelled("a2", "dgx010", "su1"),
      labelled("a3", "dgx001", "su1")],
     [("dgx001", 8, "su1"), ("dgx010", 8, "su1"), ("dgx002", 8, "su2")]),
    ([row("b1", host="gpu7.example.org"), row("b2", host="gpu10", gpus=4)],
     [("gpu7", 8, "su1"), ("gpu10", 4, "su1")]),
    ([row("c1", host="same"), row("c2", host="same")],  # one host, two Ray nodes
     [("ray-c1", 8, "su1"), ("ray-c2", 8, "su1")]),
    ([row("d1", host="head", gpus=0), {**row("d2", gpus=0), "Labels": {"gefion.node": "cpu1",
                                                                      "gefion.unit": "s"}}],
     [("cpu1", 0, "s")]),  # a CPU-only node counts only when labelled (alias labels)
], ids=["labels", "hostnames", "shared-host", "cpu-only"])
def test_nodes_and_units_come_from_labels_else_hostnames(
        table: list[dict[str, Any]], expected: list[tuple[str, int, str]]) -> None:
    cluster = discover_cluster(ray_nodes(table))
    assert [(n.name, n.gpus, n.su) for n in cluster.nodes] == expected


def test_a_node_that_restarted_is_followed_by_its_name() -> None:
    table = [labelled("old", "n1", alive=False), labelled("new", "n1"),
             labelled("x", "n2", alive=False)]
    seen = current(ray_nodes(table))
    assert (seen["n1"].node_id, seen["n1"].alive) == ("new", True)
    assert (seen["n2"].node_id, seen["n2"].alive) == ("x", False)
    assert [n.name for n in discover_cluster(ray_nodes(table)).nodes] == ["n1"]


def test_a_topology_file_gives_the_nodes_and_units() -> None:
    topology = Cluster("site", (Node("n1", 8, "a"), Node("n2", 8, "a"), Node("n3", 8, "b")))
    cluster = discover_cluster(ray_nodes([labelled("1", "n3", gpus=4), labelled("2", "n1"),
                                          labelled("9", "stranger")]), topology=topology)
    assert [(n.name, n.gpus, n.su) for n in cluster.nodes] == [
        ("n1", 8, "a"), ("n2", 8, "a"), ("n3", 4, "b")]  # n2: expected to join
    assert cluster.units == ("a", "b") and cluster.name == "site"
    with pytest.raises(TopologyError, match="labelled unit 'z'"):
        discover_cluster(ray_nodes([labelled("1", "n1", "z")]), topology=topology)


def test_no_gefion_node_at_all_is_an_error() -> None:
    with pytest.raises(TopologyError) as info:
        discover_cluster(ray_nodes([row("h", gpus=0)]))
    assert info.value.field == "ray-address"


def test_the_node_table_reports_each_change_once() -> None:
    tables = [[labelled("a", "n1"), labelled("b", "n2")]]
    node_table = NodeTable(lambda: tables[-1], ["n1", "n2", "n3"], min_interval_s=0)
    assert node_table.changes() == [NodeChange("n1", True, "Ray node a is alive"),
                                    NodeChange("n2", True, "Ray node b is alive"),
                                    NodeChange("n3", False, "not in the Ray cluster")]
    assert node_table.changes() == [] and not node_table.pending_changes()
    tables.append([labelled("a", "n1"), labelled("b", "n2", alive=False)])
    node_table.refresh()
    assert node_table.pending_changes() and not node_table.alive("n2")
    assert node_table.changes() == [NodeChange("n2", False, "Ray node b is dead")]
    tables.append([labelled("a", "n1"), labelled("b", "n2", alive=False),
                   labelled("c", "n2"), labelled("d", "n3")])
    assert [c.node for c in node_table.changes() if c.up] == ["n2", "n3"]
    node = node_table.get("n2")
    assert node is not None and node.node_id == "c" and node.address == "10.0.0.c"


def test_rendezvous_variables_of_the_batch_script_and_of_each_task() -> None:
    assert batch_rendezvous(master_addr="10.0.0.1", master_port=29500, nnodes=2,
                            ntasks=4) == {
        "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "NNODES": "2", "NODE_RANK": "0",
        "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}
    step = place_tasks(3, ["a", "b"], {"a": [0, 1], "b": [0, 1]})
    assert [task_rendezvous(step, t) for t in step] == [
        {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "3", "LOCAL_WORLD_SIZE": "2",
         "NODE_RANK": "0", "GROUP_RANK": "0", "NNODES": "2"},
        {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "3", "LOCAL_WORLD_SIZE": "2",
         "NODE_RANK": "0", "GROUP_RANK": "0", "NNODES": "2"},
        {"RANK": "2", "LOCAL_RANK": "0", "WORLD_SIZE": "3", "LOCAL_WORLD_SIZE": "1",
         "NODE_RANK": "1", "GROUP_RANK": "1", "NNODES": "2"}]
