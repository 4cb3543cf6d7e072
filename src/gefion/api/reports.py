"""The report routes under ``/v1``: usage (GPU-hours, jobs, energy) per project, user,
funder or QOS over a window (:mod:`gefion.controller.reports` says how it is counted).

Nobody sees the usage of a project they are not in: operators and admins get every
project's, others their own projects' only (a job of theirs in another project is that
project's usage, and stays out). Asking for a project one may not see answers 404, as one
that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from gefion.api.access import visible_project
from gefion.api.auth import Who
from gefion.api.jobs import ListParam, split_list
from gefion.api.views import json_response
from gefion.controller.reports import controller_report
from gefion.controller.service import Controller


def router(controller: Controller) -> APIRouter:
    api = APIRouter(tags=["reports"])

    @api.get("/reports/usage",
             summary="GPU-hours (charged and raw), jobs and energy per project, user, "
                     "funder or QOS over a window; runs overlapping it count pro rata")
    def usage(who: Who, by: Literal["project", "user", "funder", "qos"] = "project",
              from_ts: Annotated[float, Query(
                  alias="from", description="window start, seconds since the epoch "
                                            "(default: the beginning)")] = 0.0,
              to_ts: Annotated[float | None, Query(
                  alias="to", description="window end, seconds since the epoch "
                                          "(default: now)")] = None,
              project: ListParam = None) -> Response:
        wanted = split_list(project)
        for name in wanted:
            visible_project(who, name)  # another's: 404
        scope = wanted or (None if who.is_staff else sorted(who.projects))
        report = controller_report(controller, by=by, from_ts=from_ts, to_ts=to_ts,
                                   projects=scope)
        return json_response(report.to_json())

    return api
