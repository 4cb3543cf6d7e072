"""The Ray node table as the executor watches it: which Gefion node is which Ray node now,
and which nodes left or came back since the controller last asked.

``source`` is ``ray.nodes`` in production and a list-returning fake in tests; reads are
throttled to one per ``min_interval_s`` (each is a round trip to Ray's GCS).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gefion.executor.base import NodeChange
from gefion.executor.ray.discovery import RayNode, current, ray_nodes

NodeSource = Callable[[], Iterable[Mapping[str, Any]]]


class NodeTable:
    """The current incarnation of every Gefion node of ``names`` in Ray's table.

    Thread-safe: the executor's ``wait`` refreshes it from its own thread.
    """

    def __init__(self, source: NodeSource, names: Iterable[str], *,
                 min_interval_s: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self.names = tuple(names)
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._nodes: dict[str, RayNode] = {}
        self._read_at = float("-inf")
        self._reported: dict[str, bool] | None = None  # name → up, as last reported
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> None:
        """Read the table again, unless it was read less than ``min_interval_s`` ago."""
        now = self._clock()
        with self._lock:
            if not force and now - self._read_at < self.min_interval_s:
                return
            self._read_at = now
        table = current(ray_nodes(self._source()))
        with self._lock:
            self._nodes = {name: node for name, node in table.items() if name in self.names}

    def get(self, name: str) -> RayNode | None:
        with self._lock:
            return self._nodes.get(name)

    def alive(self, name: str) -> bool:
        node = self.get(name)
        return node is not None and node.alive

    def up_states(self) -> dict[str, bool]:
        """Every node of ``names``: alive in Ray or not (not in the table: not)."""
        with self._lock:
            return {name: name in self._nodes and self._nodes[name].alive
                    for name in self.names}

    def pending_changes(self) -> bool:
        """True when :meth:`changes` has something to say (no refresh here)."""
        with self._lock:
            reported = self._reported
        return reported is None or reported != self.up_states()

    def changes(self) -> list[NodeChange]:
        """Nodes whose liveness differs from the last call (the first call: every node),
        from a fresh read of the table."""
        self.refresh()
        states = self.up_states()
        with self._lock:
            before, self._reported = self._reported, states
            nodes = dict(self._nodes)
        out = []
        for name, up in states.items():
            if before is not None and before.get(name) == up:
                continue
            node = nodes.get(name)
            if up:
                reason = f"Ray node {node.node_id[:12]} is alive" if node else ""
            elif node is None:
                reason = "not in the Ray cluster"
            else:
                reason = f"Ray node {node.node_id[:12]} is dead"
            out.append(NodeChange(name, up, reason))
        return out
