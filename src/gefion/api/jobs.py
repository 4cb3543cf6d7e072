"""The job routes under ``/v1``: submit, list, show, events, cancel/hold/release, logs, queue.

Handlers are plain ``def``: FastAPI runs them in its thread pool, and the controller and
its store are thread-safe. Only the log route is ``async`` (a follow streams for as long as
the job runs); it hands its blocking calls to the thread pool.

Who asks is the request's principal (:mod:`gefion.api.auth`); what they may see and do is
:mod:`gefion.api.access`: lists and the queue show only the jobs they may see, a job they
may not see answers 404, and a submission goes only to their projects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from gefion.api import logs
from gefion.api.access import actionable_job, visible_job
from gefion.api.auth import Authenticator, Principal, Who
from gefion.api.queue import QueueFilter, QueueView
from gefion.api.schemas import BATCH_OPENAPI, SubmitBatchBody, SubmitBody, read_batch_body
from gefion.api.views import event_json, exit_signal, job_json, json_response
from gefion.controller.service import Controller
from gefion.controller.submission import SubmitRequest, new_jobs
from gefion.controller.telemetry import JobTelemetry
from gefion.core.errors import AccessError, InputError
from gefion.core.jobs import JobState
from gefion.slurm import Submission
from gefion.store import JobRow

TEXT = "text/plain; charset=utf-8"
MAX_LIMIT = 10_000

ListParam = Annotated[list[str] | None, Query(
    description="repeat the parameter or give a comma-separated list")]
KeyHeader = Annotated[str | None, Header(
    description="a retry with the same key returns the first answer's ids and submits "
                "nothing (keys are per user)")]


def split_list(values: list[str] | None) -> list[str]:
    """``?state=PENDING&state=RUNNING`` and ``?state=PENDING,RUNNING`` alike."""
    return [v.strip() for value in values or () for v in value.split(",") if v.strip()]


def parse_states(values: list[str] | None) -> list[JobState] | None:
    names = split_list(values)
    if not names:
        return None
    try:
        return [JobState(n.upper()) for n in names]
    except ValueError:
        bad = next(n for n in names if n.upper() not in JobState.__members__)
        raise InputError(f"unknown state {bad!r}; states are "
                         f"{', '.join(s.value for s in JobState)}", field="state") from None


def scoped_key(who: Principal, key: str | None) -> str | None:
    """An idempotency key in the principal's own space: another user's equal key is
    another submission."""
    return None if key is None else f"{who.name}:{key}"


def submitted_json(ids: list[int], sub: Submission) -> dict[str, Any]:
    return {"job_ids": ids, "array_job_id": ids[0] if sub.array is not None and ids else None,
            "warnings": [w.to_json() for w in sub.warnings]}


def router(controller: Controller, queue: QueueView, auth: Authenticator) -> APIRouter:
    api = APIRouter(tags=["jobs"])

    def allowed_projects(who: Principal) -> frozenset[str]:
        """Where ``who`` may submit: their projects (any project for an admin)."""
        return auth.project_names() if who.is_admin else frozenset(who.projects)

    def submit_request(body: SubmitBody, who: Principal, allowed: frozenset[str],
                       field: str = "user") -> SubmitRequest:
        """The request as ``who`` may make it: their jobs (another user's only for an
        admin), in the ``allowed`` projects, their default project."""
        user = body.user or who.name
        if user != who.name and not who.is_admin:
            raise AccessError("only an admin may submit jobs for another user; leave "
                              "'user' out", field=field, target=f"user {user}")
        return SubmitRequest(user=user, cwd=body.cwd, script=body.script,
                             argv=tuple(body.argv), env=body.env, source=body.source,
                             script_args=tuple(body.script_args),
                             default_project=who.default_project, allowed_projects=allowed)

    def detail(row: JobRow) -> dict[str, Any]:
        live = controller.live_view(row.id) if row.state is JobState.PENDING else None
        signal = exit_signal(controller.job_events(row.id)) if row.end_ts is not None \
            else None
        return job_json(row, now=controller.now(), live=live, detail=True, signal=signal,
                        telemetry=job_telemetry(controller, row))

    @api.post("/jobs", status_code=201, summary="Submit a batch job (as sbatch)",
              responses={200: {"description": "test_only: the parsed submission"},
                         201: {"description": "job_ids, array_job_id, warnings"}})
    def submit(body: SubmitBody, who: Who, idempotency_key: KeyHeader = None) -> Response:
        request = submit_request(body, who, allowed_projects(who))
        # --test-only may be a flag or a directive; parse first only when it may be there.
        if body.test_only or "--test-only" in body.argv or \
                "--test-only" in (body.script or ""):
            sub = controller.parse(request)
            if body.test_only or sub.test_only:
                cfg = controller.config
                new_jobs(sub, request, default_project=cfg.default_project,  # checks
                         default_time_limit_s=cfg.default_time_limit_s,
                         node_gpus=controller.site.node_gpus)
                return json_response(sub.to_json())
        ids, sub = controller.submit(request, idempotency_key=scoped_key(who, idempotency_key))
        return json_response(submitted_json(ids, sub), 201)

    @api.post("/jobs/batch", status_code=201,
              summary="Submit several batch jobs in one transaction, all or nothing",
              responses={201: {"description": "results: job_ids, array_job_id and warnings "
                                              "of each submission, in order"}},
              openapi_extra=BATCH_OPENAPI)
    def submit_batch(body: Annotated[SubmitBatchBody, Depends(read_batch_body)], who: Who,
                     idempotency_key: KeyHeader = None) -> Response:
        for i, item in enumerate(body.submissions):
            if item.test_only:
                raise InputError("test_only is for POST /v1/jobs, one submission at a time",
                                 field=f"submissions[{i}].test_only")
        allowed = allowed_projects(who)  # once: the same for every submission
        requests = [submit_request(b, who, allowed, f"submissions[{i}].user")
                    for i, b in enumerate(body.submissions)]
        done = controller.submit_batch(requests,
                                       idempotency_key=scoped_key(who, idempotency_key))
        return json_response({"results": [submitted_json(ids, sub) for ids, sub in done]},
                             201)

    @api.get("/jobs", summary="List the jobs you may see, by id, a page at a time")
    def list_jobs(who: Who, state: ListParam = None, user: str | None = None,
                  project: str | None = None, name: str | None = None,
                  array_job_id: int | None = None,
                  after: Annotated[int | None, Query(description="last id of the previous "
                                                                 "page")] = None,
                  limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
                  signals: Annotated[bool, Query(description="fill in the signal that ended "
                                                             "each ended job (slower)")] = False,
                  ) -> Response:
        rows = controller.list_jobs(states=parse_states(state), user=user, project=project,
                                    name=name, array_job_id=array_job_id, after_id=after,
                                    limit=limit, **visibility(who))
        now = controller.now()
        out = [job_json(r, now=now, signal=exit_signal(controller.job_events(r.id))
                        if signals and r.end_ts is not None else None,
                        telemetry=job_telemetry(controller, r)) for r in rows]
        return json_response({"jobs": out,
                              "next_after": rows[-1].id if len(rows) == limit else None})

    @api.get("/jobs/{job_id}", summary="One job: state, reason, ETA, priority, spec")
    def get_job(job_id: int, who: Who) -> Response:
        return json_response(detail(visible_job(controller, who, job_id)))

    @api.get("/jobs/{job_id}/events", summary="The job's events, in order")
    def job_events(job_id: int, who: Who) -> Response:
        visible_job(controller, who, job_id)
        return json_response({"events": [event_json(e) for e in controller.job_events(job_id)]})

    @api.post("/jobs/{job_id}/cancel", summary="Cancel (a running job is signalled)")
    def cancel(job_id: int, who: Who) -> Response:
        actionable_job(controller, who, job_id)
        return json_response(detail(controller.cancel(job_id, by=who.name)))

    @api.post("/jobs/{job_id}/hold", summary="Hold a pending job")
    def hold(job_id: int, who: Who) -> Response:
        actionable_job(controller, who, job_id)
        return json_response(detail(controller.hold(job_id, by=who.name)))

    @api.post("/jobs/{job_id}/release", summary="Release a held job")
    def release(job_id: int, who: Who) -> Response:
        actionable_job(controller, who, job_id)
        return json_response(detail(controller.release(job_id, by=who.name)))

    @api.get("/jobs/{job_id}/logs", summary="The job's output; follow=true streams it",
             response_class=Response, responses={200: {"content": {TEXT: {}}}})
    async def job_logs(job_id: int, who: Who,
                       stream: Literal["stdout", "stderr"] = "stdout",
                       tail: Annotated[int | None, Query(ge=0, le=logs.MAX_TAIL_LINES,
                                                         description="last N lines")] = None,
                       follow: bool = False) -> Response:
        row = await run_in_threadpool(visible_job, controller, who, job_id)
        if row.project not in who.projects and \
                await run_in_threadpool(controller.is_sensitive, row.project):
            raise AccessError(f"job {job_id} is of sensitive project {row.project}: only its "
                              "members read its output", target=f"job {job_id}")
        uid = logs.owner_uid(row.user)
        path = await run_in_threadpool(controller.log_path, job_id, stream)
        data, offset, truncated = await run_in_threadpool(logs.read_tail, path, tail, uid)
        headers = {"Gefion-Log-Truncated": "true"} if truncated else {}
        if not follow:
            return Response(data, media_type=TEXT, headers=headers)
        return StreamingResponse(logs.follow(controller, job_id, stream, data, offset, uid),
                                 media_type=TEXT, headers=headers)

    @api.get("/queue", summary="Jobs not yet ended that you may see (squeue), from memory",
             responses={200: {"content": {"application/json": {}, TEXT: {}}}})
    def queue_(who: Who, user: ListParam = None, project: ListParam = None,
               state: ListParam = None,
               job: ListParam = None,
               start: Annotated[bool, Query(description="order by (planned) start")] = False,
               format: Literal["json", "text"] = "json",
               tz: Annotated[int, Query(ge=-86_400, le=86_400,
                                        description="text: UTC offset (s) for times")] = 0,
               ) -> Response:
        where = QueueFilter.parse(users=split_list(user), projects=split_list(project),
                                  states=split_list(state), job_ids=split_list(job),
                                  by_start=start,
                                  scope=None if who.is_staff else (frozenset(who.projects),
                                                                   who.name))
        body = queue.render(where, format, now=controller.now(), utc_offset_s=tz)
        return Response(body, media_type=TEXT if format == "text" else "application/json")

    return api


def job_telemetry(controller: Controller, row: JobRow) -> JobTelemetry | None:
    """The telemetry sampler's view of a running job (None: not running, or unseen)."""
    sampler = controller.sampler
    if sampler is None or row.state is not JobState.RUNNING:
        return None
    return sampler.job(row.id)


def visibility(who: Principal) -> dict[str, Any]:
    """``list_jobs`` filters for the jobs ``who`` may see (none for staff)."""
    if who.is_staff:
        return {}
    return {"visible_projects": sorted(who.projects), "visible_user": who.name}
