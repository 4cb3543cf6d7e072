"""The node and cluster routes under ``/v1``: sinfo, drain, resume, and the summary. Every
signed-in user sees the nodes and the summary (as sinfo); only operators and admins drain
and resume."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from gefion.api.access import require_staff
from gefion.api.auth import Who
from gefion.api.schemas import DrainBody
from gefion.api.views import json_response, node_json
from gefion.controller.service import Controller


def router(controller: Controller) -> APIRouter:
    api = APIRouter(tags=["nodes"])

    @api.get("/nodes", summary="Every node: GPUs, allocated GPUs, state (sinfo)")
    def nodes() -> Response:
        return json_response({"nodes": [node_json(n) for n in controller.nodes()]})

    @api.post("/nodes/{name}/drain", summary="Drain a node: running jobs go on, none start")
    def drain(name: str, body: DrainBody, who: Who) -> Response:
        require_staff(who, "drain nodes", target=f"node {name}")
        return json_response(node_json(controller.drain(name, reason=body.reason,
                                                        by=who.name)))

    @api.post("/nodes/{name}/resume", summary="Put a drained or down node back in service")
    def resume(name: str, who: Who) -> Response:
        require_staff(who, "resume nodes", target=f"node {name}")
        return json_response(node_json(controller.resume(name, by=who.name)))

    @api.get("/cluster", summary="The machine at a glance: nodes, GPUs, jobs, reasons",
             tags=["cluster"])
    def cluster() -> Response:
        return json_response(controller.summary())

    return api
