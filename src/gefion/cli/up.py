"""``gefion up``: the controller on this host — store, scheduler loop, executor (local, or
Ray with ``--executor ray``) and the REST API on 127.0.0.1 — until Ctrl-C (or SIGTERM). Jobs
keep running under their supervisors (or Ray gangs) when it stops; the next ``gefion up`` on
the same data directory re-attaches. On a site's first start it also makes the admin (the
Unix account running it) and prints their API token once, keeping it in DATA/admin.token
(0600) for the ``gefion`` command of the same account (docs/access.md)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gefion.cli.errors import fail

if TYPE_CHECKING:
    from gefion.controller.service import Controller


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
    cluster: Annotated[str | None, typer.Option(
        "--cluster", metavar="PRESET",
        help="Emulate a whole cluster on this host (gefion, superpod:N, synthetic:NxG): "
             "jobs are placed on its nodes and all run here. For demos and tests.")] = None,
    reports_dir: Annotated[Path | None, typer.Option(
        "--reports-dir", metavar="DIR",
        help="Twin report folders the portal shows (default: DIR/reports).")] = None,
    executor: Annotated[str, typer.Option(
        "--executor", metavar="local|ray",
        help="local: jobs run on this host. ray: each node of a Ray cluster is a node, and "
             "a job is a gang on its nodes.")] = "local",
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", metavar="HOST:PORT",
        help="With --executor ray: the Ray cluster to join (default: start a one-node Ray "
             "head on 127.0.0.1 with this host's GPUs).")] = None,
    topology: Annotated[str | None, typer.Option(
        "--topology", metavar="FILE",
        help="With --executor ray: a topology file (or preset) naming the Ray nodes' "
             "scalable units (default: the nodes' gefion.io/unit labels).")] = None,
    grant_fallback_qos: Annotated[str | None, typer.Option(
        "--grant-fallback-qos", metavar="QOS",
        help="Let a metered project out of grant hours run its jobs in this preemptible, "
             "free QOS (e.g. scavenger) instead of holding them (GRANT_EXHAUSTED).")] = None,
    sample_interval: Annotated[float, typer.Option(
        "--sample-interval", metavar="S",
        help="Seconds between telemetry samples of the GPUs (power, utilization).")] = 5.0,
    idle_util: Annotated[float, typer.Option(
        "--idle-util", metavar="PCT",
        help="A running job's GPUs are idle below this utilization (%).")] = 5.0,
    idle_after: Annotated[str, typer.Option(
        "--idle-after", metavar="DURATION",
        help="Flag a job whose GPUs stay idle this long (30m, 2h, or seconds).")] = "30m",
) -> None:
    """Start the controller and its REST API on this host."""
    from gefion.cli.admin import duration_s
    from gefion.controller.config import DEFAULT_DATA_DIR, ControllerConfig
    from gefion.controller.service import Controller

    config = ControllerConfig(data_dir=data_dir or DEFAULT_DATA_DIR, db_url=db, host=host,
                              port=port, emulate_gpus=emulate_gpus, policy=policy,
                              kill_grace_s=kill_grace, cluster=cluster,
                              reports_dir=reports_dir, executor=executor,
                              ray_address=ray_address, topology=topology,
                              grant_fallback_qos=grant_fallback_qos,
                              sample_s=sample_interval, idle_util_pct=idle_util,
                              idle_after_s=duration_s(idle_after, field="--idle-after"))
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
    import uvicorn

    from gefion.api import create_app
    from gefion.api.server import tune_gc_for_serving

    controller = Controller(config)
    app = None
    try:  # from here on, Ctrl-C at any moment stops everything cleanly (exit 0)
        reattached = controller.start()
        url = f"http://{host}:{sock.getsockname()[1]}"
        (config.data_dir / "api.url").write_text(url + "\n")
        admin_line = _bootstrap(controller)
        node = controller.cluster.nodes[0]
        kind = "emulated" if controller.emulated else "NVML"
        where = (f"  cluster   {config.cluster}: {len(controller.cluster)} nodes, "
                 f"{controller.cluster.total_gpus} GPUs (emulated on this host)\n"
                 if config.cluster else f"  node      {node.name}: {node.gpus} GPUs ({kind})\n")
        if config.executor == "ray":
            where = (f"  Ray       {config.ray_address or 'a local head on 127.0.0.1'}: "
                     f"{len(controller.cluster)} nodes, {controller.cluster.total_gpus} GPUs "
                     f"({', '.join(controller.cluster.names[:8])}"
                     f"{', ...' if len(controller.cluster) > 8 else ''})\n")
        app = create_app(controller)
        tune_gc_for_serving()  # this process is the server from here on
        typer.echo(f"gefion controller up (policy {config.policy})\n"
                   f"  API       {url}  (OpenAPI: {url}/openapi.json)\n"
                   f"  portal    {url}/\n"
                   f"  database  {_safe_url(config.database_url)}\n"
                   f"  data      {config.data_dir}\n"
                   f"  logs      {log_file}\n"
                   + where
                   + _telemetry_line(controller)
                   + (f"  re-attached to running jobs {reattached}\n" if reattached else "")
                   + admin_line
                   + "Ctrl-C stops the controller; running jobs go on.", err=False)
        # A graceful shutdown waits for open streams (a portal tab's live feed, a log
        # follow) only this long: Ctrl-C must not hang on a browser left open.
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                               access_log=False, lifespan="off",
                                               timeout_graceful_shutdown=2))
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn hands Ctrl-C back once it has shut down: done
        pass
    finally:
        if app is not None:
            app.state.denials.close()  # refusals still being counted go to the log first
        controller.stop()
        sock.close()
        typer.echo("gefion controller stopped")


def _bootstrap(controller: Controller) -> str:
    """On a site's first start (no admin yet): the admin, their token in DATA/admin.token
    (0600), and the banner's lines that show it, once. Later starts: nothing."""
    from gefion.controller.bootstrap import (
        ADMIN_TOKEN_FILE,
        bootstrap_admin,
        local_admin_name,
        write_token_file,
    )

    assert controller.store is not None
    admin = local_admin_name()
    token = bootstrap_admin(controller.store, admin=admin,
                            default_project=controller.config.default_project,
                            ts=controller.now())
    if token is None:
        return ""
    path = controller.config.data_dir / ADMIN_TOKEN_FILE
    write_token_file(path, token)
    return (f"  admin     {admin} (new site): token {token}\n"
            f"            shown once; kept in {path} (mode 0600), where gefion finds it\n")


def _telemetry_line(controller: Controller) -> str:
    """Where the power readings come from, and the Prometheus endpoint (telemetry.md)."""
    sampler = controller.sampler
    if sampler is None:
        return ""
    source = "NVML" if sampler.reader is not None else "DGX H100 power model"
    return f"  telemetry {source}, every {sampler.sample_s:g} s; Prometheus at /metrics\n"


def _safe_url(url: str) -> str:
    """The database URL without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, where = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{where}"
