"""``create_app``: the FastAPI application around one started :class:`Controller`."""

from __future__ import annotations

from fastapi import FastAPI

from gefion import __version__
from gefion.api import jobs, nodes, problems
from gefion.api.queue import QueueView
from gefion.controller.service import Controller

DESCRIPTION = """\
Gefion's REST API: submit batch jobs (sbatch scripts and flags), watch the queue with
reasons and ETAs, read logs, cancel, hold and release jobs, drain and resume nodes.

Errors are RFC 9457 problem bodies (`application/problem+json`) with `field`, `source`
and `line` where the error has them. Times are seconds since the epoch (`*_ts`) or seconds
(`*_s`). No authentication yet: the caller says who it is (`user`).
"""


def create_app(controller: Controller) -> FastAPI:
    """The API of ``controller`` (started, with or without its loop), routes under ``/v1``,
    OpenAPI at ``/openapi.json``. Serve it with uvicorn on 127.0.0.1."""
    app = FastAPI(title="Gefion", version=__version__, description=DESCRIPTION,
                  openapi_url="/openapi.json")
    problems.install(app)
    queue = QueueView(controller)
    queue.follow()
    app.include_router(jobs.router(controller, queue), prefix="/v1")
    app.include_router(nodes.router(controller), prefix="/v1")
    app.state.controller = controller
    return app
