"""Fair share and grant standing under ``/v1``: what ``gefion share`` shows (like Slurm's
``sshare``), and one project's usage with its grant forecast.

Both are the scheduler's own numbers (:mod:`gefion.controller.standing`): the fair-share
table the cycle uses (recomputed every ``PriorityCalcPeriod``), and balances computed with
the core's grant rule. Operators and admins see every project; others their projects only
(another project's usage answers 404, as one that does not exist).

Units: GPU-seconds for usage (``raw_usage_gpu_s``, decayed), GPU-hours for grants (already
× the QOS usage factor), seconds since the epoch for ``*_ts``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from gefion.api.access import visible_project
from gefion.api.auth import Who
from gefion.api.views import json_response
from gefion.controller.service import Controller
from gefion.controller.standing import GrantStanding
from gefion.core.usage import FairShareRow
from gefion.store import NotFoundError
from gefion.store.tenancy import grant_to_json


def row_json(row: FairShareRow) -> dict[str, Any]:
    """One sshare line: ``user`` None on the project's own line."""
    return {"project": row.project, "user": row.user, "raw_shares": row.raw_shares,
            "norm_shares": round(row.shares_norm, 9),
            "raw_usage_gpu_s": round(row.raw_usage_gpu_s, 6),
            "norm_usage": round(row.usage_norm, 9),
            "effective_usage": round(row.effective_usage, 9),
            "fairshare": round(row.factor, 9)}


def standing_json(s: GrantStanding) -> dict[str, Any]:
    return {"project": s.project, "metered": s.metered, "exhausted": s.exhausted,
            "granted_gpu_hours": round(s.granted_gpu_h, 6),
            "charged_gpu_hours": round(s.charged_gpu_h, 6),
            "left_gpu_hours": round(s.left_gpu_h, 6),
            "burn_gpu_hours_per_hour": round(s.burn_gpu_h_per_h, 6),
            "burn_window_s": round(s.burn_window_s, 3),
            "runs_out_ts": s.runs_out_ts, "expires_ts": s.expires_ts,
            "grants": [grant_to_json(g) for g in s.grants]}


def router(controller: Controller) -> APIRouter:
    api = APIRouter(tags=["allocations"])

    @api.get("/share", summary="Fair share per project and user, and grants with their "
                               "forecast (sshare)")
    def share(who: Who, project: str | None = None) -> Response:
        if project is not None:
            visible_project(who, project)
        view = controller.share()
        rows = [r for r in view.rows if who.sees_project(r.project)
                and (project is None or r.project == project)]
        standings = [s for s in controller.grant_standings() if who.sees_project(s.project)
                     and (project is None or s.project == project)]
        return json_response({"as_of_ts": view.as_of_ts, "half_life_s": view.half_life_s,
                              "rows": [row_json(r) for r in rows],
                              "grants": [standing_json(s) for s in standings]})

    @api.get("/projects/{name}/usage",
             summary="A project's fair share, use and grants, with when its hours run out")
    def project_usage(name: str, who: Who) -> Response:
        visible_project(who, name)
        assert controller.store is not None
        if controller.store.get_project(name) is None:
            raise NotFoundError(f"no project {name!r}", field="project")
        view = controller.share()
        (standing,) = controller.grant_standings(name)
        return json_response({"project": name, "as_of_ts": view.as_of_ts,
                              "half_life_s": view.half_life_s,
                              "share": [row_json(r) for r in view.rows if r.project == name],
                              "grants": standing_json(standing)})

    return api
