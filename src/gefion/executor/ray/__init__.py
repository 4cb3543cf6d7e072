"""The Ray executor: Gefion on many machines, each Ray node a Gefion node.

=====================  =====================================================================
module                 what it holds
=====================  =====================================================================
:mod:`.discovery`      Ray's node table → Gefion nodes and the cluster (labels, GPUs, units)
:mod:`.nodes`          the node table watched: which node left, which came back
:mod:`.connect`        joining a Ray cluster, or starting a local head on 127.0.0.1
:mod:`.executor`       :class:`RayExecutor`: gangs in placement groups pinned to their nodes
:mod:`.agent`          the launcher actor on each node (batch scripts, srun's tasks)
:mod:`.tasks`          a step's task processes on one node
:mod:`.relay`          ``srun`` ⇄ the gang's first-node launcher (a Unix socket)
:mod:`.rendezvous`     ``MASTER_ADDR``, ``NODE_RANK``, ``WORLD_SIZE``… of a gang
:mod:`.reattach`       the gangs of an earlier controller, found through the agents
=====================  =====================================================================

Nothing here imports Ray at import time: ``srun`` inside a job imports :mod:`.relay` and
:mod:`.rendezvous` with the standard library only.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: srun imports this package
if TYPE_CHECKING:
    from gefion.executor.ray.connect import RayConnection
    from gefion.executor.ray.discovery import RayNode, discover_cluster, ray_nodes
    from gefion.executor.ray.executor import RayExecutor
    from gefion.executor.ray.nodes import NodeTable

__all__ = ["NodeTable", "RayConnection", "RayExecutor", "RayNode", "discover_cluster",
           "ray_nodes"]

_WHERE = {"RayConnection": "connect", "RayNode": "discovery",
          "discover_cluster": "discovery", "ray_nodes": "discovery",
          "RayExecutor": "executor", "NodeTable": "nodes"}


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(f"gefion.executor.ray.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'gefion.executor.ray' has no attribute {name!r}")
