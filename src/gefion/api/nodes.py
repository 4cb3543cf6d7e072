"""The node and cluster routes under ``/v1``: sinfo, drain, resume, and the summary."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from starlette.responses import Response

from gefion.api.jobs import UserParam, who
from gefion.api.schemas import ActionBody, DrainBody
from gefion.api.views import json_response, node_json
from gefion.controller.service import Controller


def router(controller: Controller) -> APIRouter:
    api = APIRouter(tags=["nodes"])

    @api.get("/nodes", summary="Every node: GPUs, allocated GPUs, state (sinfo)")
    def nodes() -> Response:
        return json_response({"nodes": [node_json(n) for n in controller.nodes()]})

    @api.post("/nodes/{name}/drain", summary="Drain a node: running jobs go on, none start")
    def drain(name: str, body: DrainBody, user: UserParam = None) -> Response:
        by = who(ActionBody(user=body.user), user)
        return json_response(node_json(controller.drain(name, reason=body.reason, by=by)))

    @api.post("/nodes/{name}/resume", summary="Put a drained or down node back in service")
    def resume(name: str, body: Annotated[ActionBody | None, Body()] = None,
               user: UserParam = None) -> Response:
        return json_response(node_json(controller.resume(name, by=who(body, user))))

    @api.get("/cluster", summary="The machine at a glance: nodes, GPUs, jobs, reasons",
             tags=["cluster"])
    def cluster() -> Response:
        return json_response(controller.summary())

    return api
