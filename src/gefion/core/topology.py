"""The cluster model: nodes, scalable units (leaf groups) and the spine above them.

A cluster is a three-level tree: node → scalable unit (a leaf switch group, Gefion's "SU")
→ spine. Placement only needs to know which unit each node sits in; the spine is the root.
The tree is shared read-only by every cycle; free capacity lives in per-cycle arrays
(see :mod:`gefion.core.profile`).

Presets (see :func:`preset`):

- ``gefion``: 191 DGX H100 nodes × 8 GPUs, ``dgx001``…``dgx191``, in six units ``su1``…``su6``
  of 32 slots; the last slot of ``su6`` is held by the fabric manager, so ``su6`` has 31 nodes.
- ``superpod:N``: N units of 32 slots, 32·N−1 nodes (the fabric manager again holds one slot).
- ``synthetic:NODESxGPUS[:SU_SIZE]``: scale tests, up to 12,500 × 8 (default unit size 32).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from gefion.core.errors import TopologyError

DGX_H100_CPUS = 224  # 2 × 56-core Xeon Platinum 8480C, with hyper-threading
DGX_H100_MEMORY_GB = 2048
SU_SLOTS = 32
MAX_SYNTHETIC_NODES = 12_500
MAX_SYNTHETIC_GPUS_PER_NODE = 16


class NodeState(StrEnum):
    """A node's state as ``sinfo`` would show it.

    ``IDLE``/``MIXED``/``ALLOCATED`` follow from the allocation; ``DRAINED`` and ``DOWN`` are
    set by operators or failures and take the node out of scheduling.
    """

    IDLE = "idle"
    MIXED = "mixed"
    ALLOCATED = "allocated"
    DRAINED = "drained"
    DOWN = "down"

    @property
    def schedulable(self) -> bool:
        return self not in (NodeState.DRAINED, NodeState.DOWN)


@dataclass(frozen=True, slots=True)
class Node:
    """One machine. ``state`` is the administrative state (``IDLE`` means "up")."""

    name: str
    gpus: int
    su: str
    cpus: int = DGX_H100_CPUS
    memory_gb: int = DGX_H100_MEMORY_GB
    state: NodeState = NodeState.IDLE
    gpu_type: str = "h100"

    def __post_init__(self) -> None:
        if not self.name:
            raise TopologyError("node name is empty", field="name")
        if self.gpus < 0:
            raise TopologyError(f"node {self.name}: gpus must be >= 0, got {self.gpus}",
                                field="gpus")
        if self.cpus < 0 or self.memory_gb < 0:
            raise TopologyError(f"node {self.name}: cpus and memory must be >= 0",
                                field="cpus")


def node_state_for(node: Node, free_gpus: int) -> NodeState:
    """The ``sinfo`` state of ``node`` given its free GPUs now."""
    if not node.state.schedulable:
        return node.state
    if free_gpus >= node.gpus:
        return NodeState.IDLE
    if free_gpus <= 0:
        return NodeState.ALLOCATED
    return NodeState.MIXED


class NodeArrays(NamedTuple):
    """Per-node columns of a cluster (read-only): GPUs, schedulable, scalable unit index."""

    capacity: npt.NDArray[np.int64]
    up: npt.NDArray[np.bool_]
    units: npt.NDArray[np.int64]


_A = TypeVar("_A", bound=np.generic)


def _frozen(array: npt.NDArray[_A]) -> npt.NDArray[_A]:
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class Cluster:
    """An immutable cluster: nodes in a fixed order, each in one scalable unit.

    Node order is the index used by every per-node array in the core. ``units`` lists the
    scalable units in order; ``spine`` names the root of the tree.
    """

    name: str
    nodes: tuple[Node, ...]
    units: tuple[str, ...] = ()
    spine: str = "spine"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _unit_index: dict[str, int] = field(init=False, repr=False, compare=False)
    _node_unit: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _capacity: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _up: tuple[bool, ...] = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _max_gpus: int = field(init=False, repr=False, compare=False)
    _total_gpus: int = field(init=False, repr=False, compare=False)
    _arrays: NodeArrays = field(init=False, repr=False, compare=False)
    _nodes_ge: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        units = self.units or tuple(dict.fromkeys(n.su for n in self.nodes))
        object.__setattr__(self, "units", tuple(units))
        unit_index = {u: i for i, u in enumerate(self.units)}
        if len(unit_index) != len(self.units):
            raise TopologyError("duplicate scalable unit name", field="units")
        index: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            if node.name in index:
                raise TopologyError(f"duplicate node name {node.name!r}", field="nodes")
            if node.su not in unit_index:
                raise TopologyError(
                    f"node {node.name!r} is in unknown scalable unit {node.su!r}", field="su")
            index[node.name] = i
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_unit_index", unit_index)
        object.__setattr__(self, "_node_unit", tuple(unit_index[n.su] for n in self.nodes))
        object.__setattr__(self, "_capacity", tuple(n.gpus for n in self.nodes))
        object.__setattr__(self, "_up", tuple(n.state.schedulable for n in self.nodes))
        object.__setattr__(self, "_names", tuple(n.name for n in self.nodes))
        object.__setattr__(self, "_max_gpus", max(self._capacity, default=0))
        object.__setattr__(self, "_total_gpus", sum(self._capacity))
        object.__setattr__(self, "_arrays", NodeArrays(
            _frozen(np.asarray(self._capacity, dtype=np.int64).reshape(-1)),
            _frozen(np.asarray(self._up, dtype=np.bool_).reshape(-1)),
            _frozen(np.asarray(self._node_unit, dtype=np.int64).reshape(-1))))
        cap, up = self._arrays.capacity, self._arrays.up
        sizes = np.arange(self._max_gpus + 1)[:, None]
        object.__setattr__(self, "_nodes_ge", (
            _frozen(np.count_nonzero((cap >= sizes) & up, axis=1).astype(np.int64)),
            _frozen(np.count_nonzero(cap >= sizes, axis=1).astype(np.int64))))

    # -- lookups ------------------------------------------------------------------------
    def index_of(self, node_name: str) -> int:
        """Index of ``node_name``; raises :class:`TopologyError` if there is no such node."""
        try:
            return self._index[node_name]
        except KeyError:
            raise TopologyError(f"no node named {node_name!r} in cluster {self.name!r}",
                                field="node") from None

    def has_node(self, node_name: str) -> bool:
        return node_name in self._index

    def unit_of(self, node_index: int) -> int:
        """Index (into ``units``) of the scalable unit of node ``node_index``."""
        return self._node_unit[node_index]

    @property
    def arrays(self) -> NodeArrays:
        """Capacity, schedulability and unit per node as read-only numpy arrays, made once
        per cluster: a cycle on 12,500 nodes would spend more turning the tuples into
        arrays than scheduling."""
        return self._arrays

    @property
    def nodes_ge(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """For each ``g`` from 0 to :attr:`max_gpus`: how many schedulable nodes, and how
        many nodes at all, have ``g`` GPUs or more (read-only, made once per cluster)."""
        return self._nodes_ge

    @property
    def node_units(self) -> tuple[int, ...]:
        """Unit index per node, in node order."""
        return self._node_unit

    @property
    def node_index(self) -> dict[str, int]:
        """Node name → index (read-only by convention: shared by every cycle)."""
        return self._index

    @property
    def names(self) -> tuple[str, ...]:
        """Node names, in node order."""
        return self._names

    @property
    def capacity(self) -> tuple[int, ...]:
        """GPUs per node, in node order."""
        return self._capacity

    @property
    def up(self) -> tuple[bool, ...]:
        """Whether each node may be scheduled (not drained or down), in node order."""
        return self._up

    def nodes_in_unit(self, unit: str) -> list[Node]:
        return [n for n in self.nodes if n.su == unit]

    # -- totals -------------------------------------------------------------------------
    @property
    def total_gpus(self) -> int:
        return self._total_gpus

    @property
    def max_gpus_per_node(self) -> int:
        return self._max_gpus

    def __len__(self) -> int:
        return len(self.nodes)

    # -- changes (copies) ---------------------------------------------------------------
    def with_states(self, states: dict[str, NodeState]) -> Cluster:
        """A copy with the administrative state of some nodes replaced (drain, down, resume)."""
        for name in states:
            self.index_of(name)
        nodes = tuple(
            Node(n.name, n.gpus, n.su, n.cpus, n.memory_gb, states[n.name], n.gpu_type)
            if n.name in states else n
            for n in self.nodes
        )
        return Cluster(self.name, nodes, self.units, self.spine)


# -- presets ----------------------------------------------------------------------------

def _units_of_slots(prefix: str, node_count: int, gpus: int, su_size: int,
                    name_width: int, **node_kw: object) -> tuple[Node, ...]:
    return tuple(
        Node(f"{prefix}{i + 1:0{name_width}d}", gpus, f"su{i // su_size + 1}", **node_kw)  # type: ignore[arg-type]
        for i in range(node_count)
    )


def superpod(units: int, *, name: str | None = None) -> Cluster:
    """A DGX SuperPOD of ``units`` scalable units of 32 slots, one slot held by the fabric
    manager: 32·units − 1 DGX H100 nodes named ``dgx001``…"""
    if units < 1:
        raise TopologyError(f"a SuperPOD needs at least one scalable unit, got {units}",
                            field="cluster")
    count = SU_SLOTS * units - 1
    width = max(3, len(str(count)))
    nodes = _units_of_slots("dgx", count, 8, SU_SLOTS, width)
    return Cluster(name or f"superpod:{units}", nodes,
                   tuple(f"su{i + 1}" for i in range(units)))


def gefion() -> Cluster:
    """Denmark's Gefion: 191 DGX H100 nodes, 1,528 H100 GPUs, six scalable units."""
    return superpod(6, name="gefion")


def synthetic(nodes: int, gpus_per_node: int, su_size: int = SU_SLOTS) -> Cluster:
    """A homogeneous synthetic cluster for scale tests (``node00001``…)."""
    if not 1 <= nodes <= MAX_SYNTHETIC_NODES:
        raise TopologyError(f"synthetic clusters have 1..{MAX_SYNTHETIC_NODES} nodes, "
                            f"got {nodes}", field="cluster")
    if not 1 <= gpus_per_node <= MAX_SYNTHETIC_GPUS_PER_NODE:
        raise TopologyError(f"synthetic nodes have 1..{MAX_SYNTHETIC_GPUS_PER_NODE} GPUs, "
                            f"got {gpus_per_node}", field="cluster")
    if su_size < 1:
        raise TopologyError(f"scalable unit size must be >= 1, got {su_size}", field="cluster")
    width = max(5, len(str(nodes)))
    node_tuple = _units_of_slots("node", nodes, gpus_per_node, su_size, width)
    units = tuple(dict.fromkeys(n.su for n in node_tuple))
    suffix = f":{su_size}" if su_size != SU_SLOTS else ""
    return Cluster(f"synthetic:{nodes}x{gpus_per_node}{suffix}", node_tuple, units)


_SUPERPOD = re.compile(r"superpod:(\d+)")
_SYNTHETIC = re.compile(r"synthetic:(\d+)x(\d+)(?::(\d+))?")
PRESET_NAMES: Sequence[str] = ("gefion", "superpod:N", "synthetic:NODESxGPUS[:SU_SIZE]")


def is_preset(name: str) -> bool:
    return name == "gefion" or bool(_SUPERPOD.fullmatch(name) or _SYNTHETIC.fullmatch(name))


def preset(name: str) -> Cluster:
    """The cluster a preset name describes; :class:`TopologyError` for an unknown name."""
    if name == "gefion":
        return gefion()
    if m := _SUPERPOD.fullmatch(name):
        return superpod(int(m.group(1)))
    if m := _SYNTHETIC.fullmatch(name):
        su = int(m.group(3)) if m.group(3) else SU_SLOTS
        return synthetic(int(m.group(1)), int(m.group(2)), su)
    raise TopologyError(
        f"unknown cluster preset {name!r}; expected one of {', '.join(PRESET_NAMES)}",
        field="cluster")


def cluster_from_nodes(name: str, nodes: Iterable[Node], units: Sequence[str] = (),
                       spine: str = "spine") -> Cluster:
    return Cluster(name, tuple(nodes), tuple(units), spine)
