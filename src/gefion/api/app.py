"""``create_app``: the FastAPI application around one started :class:`Controller`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from starlette.responses import Response

from gefion import __version__, portal
from gefion.api import (
    access,
    allocations,
    jobs,
    metrics,
    nodes,
    people,
    problems,
    reports,
    share,
)
from gefion.api.auth import authenticate
from gefion.api.queue import QueueView
from gefion.api.views import json_response
from gefion.controller.service import Controller

DESCRIPTION = """\
Gefion's REST API: submit batch jobs (sbatch scripts and flags), watch the queue with
reasons and ETAs, read logs, cancel, hold and release jobs, drain and resume nodes;
manage users, projects, members, tokens, QOS, grants and reservations.

Every route but `/v1/health` needs an API token: `Authorization: Bearer gfn_...`. Who may
do what follows the caller's role (admin, operator, project lead, member): see
docs/access.md. A job, project or token you may not see answers 404, as one that does not
exist; something you may see but not do, 403; no valid token, 401.

Errors are RFC 9457 problem bodies (`application/problem+json`) with `field`, `source`
and `line` where the error has them. Times are seconds since the epoch (`*_ts`) or seconds
(`*_s`).
"""


def create_app(controller: Controller) -> FastAPI:
    """The API of ``controller`` (started, with or without its loop), routes under ``/v1``,
    OpenAPI at ``/openapi.json``. Serve it with uvicorn on 127.0.0.1."""
    app = FastAPI(title="Gefion", version=__version__, description=DESCRIPTION,
                  openapi_url="/openapi.json")
    problems.install(app)
    auth = access.install(app, controller)  # app.state.auth, app.state.denials
    queue = QueueView(controller)
    queue.follow()
    signed_in = [Depends(authenticate)]  # every /v1 route but the health check
    app.include_router(jobs.router(controller, queue, auth), prefix="/v1",
                       dependencies=signed_in)
    app.include_router(nodes.router(controller), prefix="/v1", dependencies=signed_in)
    app.include_router(people.router(controller), prefix="/v1", dependencies=signed_in)
    app.include_router(allocations.router(controller), prefix="/v1", dependencies=signed_in)
    app.include_router(share.router(controller), prefix="/v1", dependencies=signed_in)
    app.include_router(reports.router(controller), prefix="/v1", dependencies=signed_in)
    app.include_router(_health(), prefix="/v1")
    app.include_router(metrics.router(controller), dependencies=signed_in)  # Prometheus
    app.include_router(portal.router(controller))  # the web pages: /, /machine, ... (#7)
    app.state.controller = controller
    return app


def _health() -> APIRouter:
    api = APIRouter(tags=["cluster"])

    @api.get("/health", summary="Is the server up? (no token needed; says nothing else)")
    def health() -> Response:
        return json_response({"status": "ok", "version": __version__})

    return api
