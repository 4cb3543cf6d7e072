"""``gefion up``: the controller on this host — store, scheduler loop, local executor and
the REST API on 127.0.0.1 — until Ctrl-C (or SIGTERM). Jobs keep running under their
supervisors when it stops; the next ``gefion up`` on the same data directory re-attaches."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Annotated

import typer

from gefion.cli.errors import fail


def up(
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", metavar="DIR",
        help="Where the database, job run directories and logs live "
             "(default: $GEFION_HOME, else ~/.local/share/gefion).")] = None,
    db: Annotated[str | None, typer.Option(
        "--db", metavar="URL",
        help="Database URL: postgresql://user:pw@host/db (default: SQLite in DIR).")] = None,
    host: Annotated[str, typer.Option(help="Address the API binds to.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port (0: any free port).")] = 8642,
    emulate_gpus: Annotated[int | None, typer.Option(
        "--emulate-gpus", metavar="N",
        help="Emulate a node of N GPUs (default: the real GPUs NVML finds, else 8 "
             "emulated).")] = None,
    policy: Annotated[str, typer.Option(help="Scheduling policy.")] = "gefion",
    kill_grace: Annotated[int, typer.Option(
        "--kill-grace", metavar="S",
        help="Seconds between SIGTERM and SIGKILL when a job is ended.")] = 30,
) -> None:
    """Start the controller and its REST API on this host."""
    from gefion.controller.config import DEFAULT_DATA_DIR, ControllerConfig
    from gefion.controller.service import Controller

    config = ControllerConfig(data_dir=data_dir or DEFAULT_DATA_DIR, db_url=db, host=host,
                              port=port, emulate_gpus=emulate_gpus, policy=policy,
                              kill_grace_s=kill_grace)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    log_file = config.log_dir / "controller.log"
    logging.basicConfig(filename=log_file, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it a keep-alive answer waits 40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # from here on connections wait in the backlog for the server
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    controller = Controller(config)
    reattached = controller.start()
    url = f"http://{host}:{sock.getsockname()[1]}"
    (config.data_dir / "api.url").write_text(url + "\n")
    node = controller.cluster.nodes[0]
    kind = "emulated" if controller.emulated else "NVML"
    typer.echo(f"gefion controller up (policy {config.policy})\n"
               f"  API       {url}  (OpenAPI: {url}/openapi.json)\n"
               f"  database  {_safe_url(config.database_url)}\n"
               f"  data      {config.data_dir}\n"
               f"  logs      {log_file}\n"
               f"  node      {node.name}: {node.gpus} GPUs ({kind})\n"
               + (f"  re-attached to running jobs {reattached}\n" if reattached else "")
               + "Ctrl-C stops the controller; running jobs go on.", err=False)
    import uvicorn

    from gefion.api import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(controller), log_level="warning",
                                           access_log=False, lifespan="off"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn hands Ctrl-C back once it has shut down: done
        pass
    finally:
        controller.stop()
        sock.close()
        typer.echo("gefion controller stopped")


def _safe_url(url: str) -> str:
    """The database URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, where = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{where}"
