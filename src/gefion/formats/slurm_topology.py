"""Import Slurm's ``topology.conf`` (the ``topology/tree`` plugin) as a cluster.

::

    # leaf switches: their nodes become one scalable unit each
    SwitchName=s1 Nodes=dgx[001-032]
    SwitchName=s2 Nodes=dgx[033-064] LinkSpeed=400
    # upper levels
    SwitchName=spine Switches=s[1-2]

Rules. Keys are case-insensitive (``SwitchName``, ``Nodes``, ``Switches``, ``LinkSpeed``;
``LinkSpeed`` is accepted and ignored). ``#`` starts a comment; a trailing ``\\`` continues
a line. A switch lists either ``Nodes`` (a leaf) or ``Switches`` (an upper level). Gefion's
model has three levels, so a deeper tree is flattened: every leaf switch is a unit, in file
order, and the root — the one switch no other switch lists — is the spine; with several
roots (or a flat file of leaves only) the spine is called ``spine``. Nodes get
``gpus_per_node`` GPUs each, as topology.conf says nothing about GPUs.

Every error is a :class:`~gefion.core.errors.TopologyError` with file, line and field: a
node under two leaf switches, an unknown key, a malformed hostlist, a switch that names an
unknown switch, a cycle of switches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

from gefion.core.errors import InputError, TopologyError
from gefion.core.topology import DGX_H100_CPUS, DGX_H100_MEMORY_GB, Cluster, Node
from gefion.formats.hostlist import expand

KEYS = {"switchname": "SwitchName", "nodes": "Nodes", "switches": "Switches",
        "linkspeed": "LinkSpeed"}


@dataclass
class _Switch:
    name: str
    line: int
    nodes: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    is_leaf: bool = False


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each logical line: comments cut, continuations joined."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    first = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not pending:
            first = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(pending).strip()
        pending = []
        if joined:
            out.append((first, joined))
    if pending and " ".join(pending).strip():
        out.append((first, " ".join(pending).strip()))
    return out


def parse_slurm_topology(text: str, source: str = "topology.conf", *,
                         gpus_per_node: int = 8, name: str | None = None,
                         cpus: int = DGX_H100_CPUS, memory_gb: int = DGX_H100_MEMORY_GB,
                         gpu_type: str = "h100") -> Cluster:
    """Parse topology.conf ``text`` into a cluster of leaf-switch units.

    ``name`` defaults to the file name without its extension.
    """
    if gpus_per_node < 0:
        raise TopologyError(f"must be >= 0, got {gpus_per_node}", field="gpus_per_node")
    switches: dict[str, _Switch] = {}
    for number, line in _logical_lines(text):
        def fail(message: str, key: str, at: int = number) -> TopologyError:
            return TopologyError(message, source=source, line=at, field=key)

        values: dict[str, str] = {}
        for token in line.split():
            key, eq, val = token.partition("=")
            canon = KEYS.get(key.lower())
            if canon is None:
                hint = " (topology/block is not supported)" if key.lower() in (
                    "blockname", "blocksizes") else ""
                raise fail(f"unknown key {key!r}{hint}; expected "
                           f"{', '.join(KEYS.values())}", key)
            if not eq or not val:
                raise fail(f"{canon} needs a value ({canon}=...)", canon)
            if canon in values:
                raise fail(f"{canon} is given twice on one line", canon)
            values[canon] = val
        if "SwitchName" not in values:
            raise fail("every line must name its switch (SwitchName=...)", "SwitchName")
        sw = _Switch(values["SwitchName"], number)
        if sw.name in switches:
            raise fail(f"switch {sw.name!r} is defined twice (first on line "
                       f"{switches[sw.name].line})", "SwitchName")
        if "Nodes" in values and "Switches" in values:
            raise fail(f"switch {sw.name!r} lists both Nodes and Switches; a switch is "
                       "either a leaf (Nodes) or an upper level (Switches)", "Switches")
        try:
            if "Nodes" in values:
                sw.nodes, sw.is_leaf = expand(values["Nodes"]), True
            elif "Switches" in values:
                sw.children = expand(values["Switches"])
        except InputError as e:
            raise fail(e.message, "Nodes" if "Nodes" in values else "Switches") from None
        switches[sw.name] = sw

    def fail_at(sw: _Switch, message: str, key: str) -> TopologyError:
        return TopologyError(message, source=source, line=sw.line, field=key)

    parents: dict[str, str] = {}
    for sw in switches.values():
        for child in sw.children:
            if child not in switches:
                raise fail_at(sw, f"switch {sw.name!r} lists unknown switch {child!r}",
                              "Switches")
            if child in parents:
                raise fail_at(sw, f"switch {child!r} is listed under both {parents[child]!r} "
                                  f"and {sw.name!r}", "Switches")
            parents[child] = sw.name
    for sw in switches.values():  # walk up from each switch: a repeat is a cycle
        seen = {sw.name}
        up = parents.get(sw.name)
        while up is not None:
            if up in seen:
                raise fail_at(sw, f"switches form a cycle through {sw.name!r}", "Switches")
            seen.add(up)
            up = parents.get(up)

    nodes: list[Node] = []
    home: dict[str, _Switch] = {}
    for sw in switches.values():
        for node_name in sw.nodes:
            if node_name in home:
                raise fail_at(sw, f"node {node_name!r} is under leaf switches "
                                  f"{home[node_name].name!r} (line {home[node_name].line}) "
                                  f"and {sw.name!r}", "Nodes")
            home[node_name] = sw
            nodes.append(Node(node_name, gpus_per_node, sw.name, cpus, memory_gb,
                              gpu_type=gpu_type))
    units = tuple(sw.name for sw in switches.values() if sw.is_leaf)
    if not units:
        raise TopologyError("no leaf switch (SwitchName=... Nodes=...) in the file",
                            source=source, field="Nodes")
    roots = [sw for sw in switches.values() if sw.name not in parents]
    spine = roots[0].name if len(roots) == 1 and not roots[0].is_leaf else "spine"
    return Cluster(name or PurePath(source).stem or "topology", tuple(nodes), units, spine)
