"""The controller's connection to Ray: join a running cluster (``--ray-address HOST:PORT``)
or start a one-node head of its own on 127.0.0.1 (no address).

A cluster with token authentication (Ray's default in recent releases when a head finds
``~/.ray/auth_token``) needs ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` in the
controller's environment, as any Ray driver does. A head started here listens on 127.0.0.1
only, has no dashboard, and is shut down with the controller (its gangs with it).
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gefion.core.errors import InputError
from gefion.executor.ray.executor import NAMESPACE


@dataclass
class RayConnection:
    """This process as a Ray driver. ``address`` None: the head was started here."""

    address: str | None

    @classmethod
    def open(cls, address: str | None, *, node_name: str, gpus: int,
             num_cpus: int | None = None, token_file: Path | None = None) -> RayConnection:
        """Connect (``address``) or start a local head whose one node is ``node_name`` with
        ``gpus`` GPUs (declared: Ray counts them, Gefion pins them). Raises
        :class:`InputError` (field ``ray-address``) when no cluster answers.

        A local head gets token authentication with a token of its own, written to
        ``token_file`` (mode 0600) for other drivers — not Ray's default of
        ``~/.ray/auth_token`` in the user's home — unless ``RAY_AUTH_MODE`` says otherwise.
        """
        checked = None
        if address is not None:  # before Ray loads: a wrong address fails in seconds
            from gefion.executor.ray.address import check_ray_address

            checked = check_ray_address(address)
        elif "RAY_AUTH_MODE" not in os.environ:  # before Ray loads: it reads them once
            token = secrets.token_hex(32)
            if token_file is not None:
                fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(token + "\n")
            os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
        import ray

        quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False,
                                 "namespace": NAMESPACE}
        if checked is None:
            # "local": never attach to a cluster found in /tmp/ray or $RAY_ADDRESS
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
                     num_gpus=gpus, labels={"gefion.io/node": node_name},
                     include_dashboard=False, _node_ip_address="127.0.0.1", **quiet)
            return cls(None)
        try:
            ray.init(address=checked, **quiet)
        except (ConnectionError, RuntimeError) as exc:  # no GCS there, another Ray version
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"cannot connect to Ray at {checked}: {first}",
                             field="ray-address") from None
        return cls(checked)

    @staticmethod
    def node_table() -> list[dict[str, Any]]:
        """Ray's node table (``ray.nodes()``): every node, dead ones too."""
        import ray

        nodes: Any = ray.nodes  # untyped
        return list(nodes())

    def close(self) -> None:
        """Leave the cluster (a head started here stops, and its gangs with it)."""
        import ray

        if ray.is_initialized():
            ray.shutdown()
