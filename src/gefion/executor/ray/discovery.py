"""Ray nodes as Gefion nodes: pure functions of Ray's node table (``ray.nodes()``).

Each Ray node is one Gefion node:

- **name**: the label ``gefion.io/node`` (or ``gefion.node``), else the node's host name
  (``ray-<node id>`` when two nodes share one, as on a test machine);
- **scalable unit**: the label ``gefion.io/unit`` (or ``gefion.unit``), else the topology
  file's, else ``su1``;
- **GPUs**: its ``GPU`` resource (whole GPUs);
- **state**: alive or not, from the node table. A node that restarts comes back under a new
  Ray node id with the same name: the name is what Gefion follows.

Labels are set when a node starts: ``ray start --labels=gefion.io/node=dgx001,gefion.io/unit=su1``.
Nodes with neither a Gefion label nor GPUs (a CPU-only head node) are not Gefion nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gefion.core.errors import TopologyError
from gefion.core.topology import Cluster, Node

NODE_LABELS = ("gefion.io/node", "gefion.node")
UNIT_LABELS = ("gefion.io/unit", "gefion.unit")
DEFAULT_UNIT = "su1"


@dataclass(frozen=True, slots=True)
class RayNode:
    """One incarnation of a node in Ray's table. ``address`` is where its processes are
    reached (``MASTER_ADDR`` of a gang that starts there); ``unit`` is ``""`` when no label
    says."""

    name: str
    node_id: str
    address: str
    alive: bool
    gpus: int
    unit: str = ""
    cpus: float = 0.0


def _label(labels: Mapping[str, str], keys: Iterable[str]) -> str:
    for key in keys:
        value = labels.get(key)
        if value:
            return str(value)
    return ""


def ray_nodes(table: Iterable[Mapping[str, Any]]) -> list[RayNode]:
    """The Gefion nodes in ``ray.nodes()``, every incarnation (dead ones included), in the
    table's order."""
    rows = list(table)
    hosts: dict[str, int] = {}
    for row in rows:
        host = str(row.get("NodeManagerHostname") or "").split(".")[0]
        hosts[host] = hosts.get(host, 0) + 1
    out: list[RayNode] = []
    for row in rows:
        labels = row.get("Labels") or {}
        resources = row.get("Resources") or {}
        node_id = str(row["NodeID"])
        name = _label(labels, NODE_LABELS)
        gpus = int(resources.get("GPU", 0) or 0)
        if not name and not gpus:
            continue
        if not name:
            host = str(row.get("NodeManagerHostname") or "").split(".")[0]
            name = host if host and hosts[host] == 1 else f"ray-{node_id[:12]}"
        out.append(RayNode(name=name, node_id=node_id,
                           address=str(row.get("NodeManagerAddress") or ""),
                           alive=bool(row.get("Alive")), gpus=gpus,
                           unit=_label(labels, UNIT_LABELS),
                           cpus=float(resources.get("CPU", 0) or 0)))
    return out


def current(nodes: Iterable[RayNode]) -> dict[str, RayNode]:
    """Name → the incarnation that counts: the alive one if any, else the last one listed.

    (A dead incarnation's table entry lacks its resources, so its GPUs read 0: the last
    alive one said how many it had, and the cluster keeps that figure.)"""
    out: dict[str, RayNode] = {}
    for node in nodes:
        held = out.get(node.name)
        if held is None or node.alive or not held.alive:
            out[node.name] = node
    return out


def discover_cluster(nodes: Iterable[RayNode], *, topology: Cluster | None = None,
                     name: str = "ray") -> Cluster:
    """The Gefion cluster of the Ray nodes.

    Without ``topology``: every node seen alive, ordered by unit then name, its unit from its
    label (else ``su1``). With a topology file's cluster: exactly its nodes, in its order
    and units; the GPUs of a node that is in Ray are Ray's (a node only in the file is
    expected to join later, and is DOWN until it does). Raises :class:`TopologyError` for a
    node whose labelled unit contradicts the file, or when there is no node at all.
    """
    seen = current(nodes)
    if topology is not None:
        out = []
        for node in topology.nodes:
            ray_node = seen.get(node.name)
            if ray_node is not None and ray_node.unit and ray_node.unit != node.su:
                raise TopologyError(f"Ray node {node.name} is labelled unit "
                                    f"{ray_node.unit!r}, the topology file says {node.su!r}",
                                    field="su")
            gpus = ray_node.gpus if ray_node is not None and ray_node.alive else node.gpus
            out.append(Node(node.name, gpus, node.su, node.cpus, node.memory_gb,
                            gpu_type=node.gpu_type))
        return Cluster(topology.name, tuple(out), topology.units, topology.spine)
    alive = [n for n in seen.values() if n.alive]
    if not alive:
        raise TopologyError("the Ray cluster has no node with GPUs or a gefion.io/node label",
                            field="ray-address")
    alive.sort(key=lambda n: (n.unit or DEFAULT_UNIT, _natural(n.name)))
    return Cluster(name, tuple(Node(n.name, n.gpus, n.unit or DEFAULT_UNIT) for n in alive))


def _natural(text: str) -> tuple[tuple[int, str], ...]:
    """A sort key that puts ``node2`` before ``node10``."""
    import re

    return tuple((int(part), "") if part.isdigit() else (0, part)
                 for part in re.split(r"(\d+)", text))
