"""The controller's body on Ray: the connection, the cluster it discovers, the node table
the executor watches, and the executor itself (``gefion up --executor ray``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gefion.controller.config import ControllerConfig
from gefion.controller.node import EMULATED_GPUS, detect_gpus
from gefion.core.topology import Cluster
from gefion.executor.ray.connect import RayConnection
from gefion.executor.ray.discovery import discover_cluster, ray_nodes
from gefion.executor.ray.executor import RayExecutor
from gefion.executor.ray.nodes import NodeTable

log = logging.getLogger("gefion.controller")


@dataclass
class RayBody:
    connection: RayConnection
    cluster: Cluster
    nodes: NodeTable

    @classmethod
    def open(cls, config: ControllerConfig) -> RayBody:
        """Join ``config.ray_address`` (or start a local head with this host's GPUs, real
        or ``emulate_gpus``) and discover its nodes. Raises
        :class:`~gefion.core.errors.InputError` / :class:`~gefion.core.errors.TopologyError`
        naming the field (``ray-address``, ``topology``)."""
        topology = None
        if config.topology is not None:
            from gefion.formats.cluster import load_cluster

            topology = load_cluster(config.topology)
        gpus = config.emulate_gpus or detect_gpus() or EMULATED_GPUS
        connection = RayConnection.open(config.ray_address, node_name=config.node_name,
                                        gpus=gpus, token_file=config.data_dir / "ray.token")
        try:
            cluster = discover_cluster(ray_nodes(connection.node_table()), topology=topology)
            nodes = NodeTable(connection.node_table, cluster.names)
        except BaseException:
            connection.close()
            raise
        log.info("Ray cluster %s: %d nodes, %d GPUs", config.ray_address or "(local head)",
                 len(cluster), cluster.total_gpus)
        return cls(connection, cluster, nodes)

    def executor(self, run_dir: Path) -> RayExecutor:
        """The executor; gangs keep their run directories in ``run_dir/ray/<node>/``."""
        return RayExecutor(run_dir / "ray", self.nodes)

    def close(self) -> None:
        self.connection.close()
