"""The topology YAML format → :class:`~gefion.core.topology.Cluster` (see docs/topology.md).

::

    name: mycluster          # optional; default: the file name without its extension
    spine: spine             # optional name of the root switch
    defaults:                # optional; these are the defaults of the defaults
      gpus: 8
      cpus: 224
      memory_gb: 2048
      gpu_type: h100
    units:                   # scalable units (leaf switch groups), in order
      - name: su1
        nodes: "dgx[001-032]"            # a hostlist expression, or a list of them
      - name: su2
        nodes: ["dgx033", "dgx034"]
        gpus: 4                          # per-unit override of any default

or, for a file that just names a preset (optionally renaming it)::

    preset: gefion

Every error is a :class:`~gefion.core.errors.TopologyError` naming file, line and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from gefion.core.errors import InputError, TopologyError
from gefion.core.topology import DGX_H100_CPUS, DGX_H100_MEMORY_GB, Cluster, Node, preset
from gefion.formats.hostlist import expand
from gefion.formats.yamlsrc import Fields, Value, load_yaml

NODE_KEYS = ("gpus", "cpus", "memory_gb", "gpu_type")
DEFAULT_GPUS = 8


def parse_topology(text: str, source: str = "<topology>") -> Cluster:
    """Parse topology YAML ``text``; ``source`` names the file in error messages."""
    root = load_yaml(text, source, error_type=TopologyError)
    return topology_from_value(root, default_name=PurePath(source).stem or "cluster")


def topology_from_value(value: Value, *, default_name: str = "cluster") -> Cluster:
    """Build a cluster from an already loaded YAML mapping (a file, or inline in a plan)."""
    if not issubclass(value.error_type, TopologyError):
        value = Value(value.data, value.source, value.line, value.field, TopologyError)
    if isinstance(value.data, dict) and "preset" in value.data:
        f = value.as_fields(["preset"], ["name"])
        preset_value = f.get("preset")
        try:
            cluster = preset(preset_value.as_str())
        except InputError as e:
            raise preset_value.relocate(e) from None
        name = f.string("name", cluster.name)
        return Cluster(name, cluster.nodes, cluster.units, cluster.spine)

    f = value.as_fields(["units"], ["name", "spine", "defaults"])
    name = f.string("name", default_name)
    spine = f.string("spine", "spine")
    base = NodeSettings().over(f.get("defaults").as_fields((), NODE_KEYS, null_ok=True))
    units = f.get("units").as_list()
    if not units:
        raise f.error("units", "must list at least one scalable unit")

    nodes: list[Node] = []
    unit_names: dict[str, Value] = {}
    node_home: dict[str, str] = {}  # node name → field path of the unit that holds it
    for unit in units:
        u = unit.as_fields(["name", "nodes"], NODE_KEYS)
        unit_name = u.get("name")
        su = unit_name.as_id()
        if su in unit_names:
            raise unit_name.error(f"duplicate scalable unit {su!r} (first on line "
                                  f"{unit_names[su].line})")
        unit_names[su] = unit_name
        settings = base.over(u)
        names_value = u.get("nodes")
        names = expand_nodes(names_value)
        if not names:
            raise names_value.error("must name at least one node")
        for node_name, where in names:
            if node_name in node_home:
                raise where.error(f"node {node_name!r} is already in {node_home[node_name]}")
            node_home[node_name] = f"unit {su!r} ({unit.field})"
            nodes.append(Node(node_name, settings.gpus, su, settings.cpus, settings.memory_gb,
                              gpu_type=settings.gpu_type))
    try:
        return Cluster(name, tuple(nodes), tuple(unit_names), spine)
    except InputError as e:  # checked above; kept so a core rule added later stays located
        raise value.relocate(e) from None


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """What every node of a unit has (the ``defaults`` block, or a unit's overrides)."""

    gpus: int = DEFAULT_GPUS
    cpus: int = DGX_H100_CPUS
    memory_gb: int = DGX_H100_MEMORY_GB
    gpu_type: str = "h100"

    def over(self, f: Fields) -> NodeSettings:
        """These settings with the keys ``f`` gives replaced."""
        return NodeSettings(f.integer("gpus", self.gpus, ge=0),
                            f.integer("cpus", self.cpus, ge=0),
                            f.integer("memory_gb", self.memory_gb, ge=0),
                            f.string("gpu_type", self.gpu_type))


def expand_nodes(value: Value) -> list[tuple[str, Value]]:
    """Node names from a hostlist string or a list of them, each with the value it came
    from (for error lines). Malformed expressions raise a located TopologyError."""
    out: list[tuple[str, Value]] = []
    for item in value.as_strings():
        try:
            names = expand(item.data)
        except InputError as e:
            raise item.relocate(e) from None
        out.extend((name, item) for name in names)
    return out
