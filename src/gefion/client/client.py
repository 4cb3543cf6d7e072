""":class:`Client`: the REST API as typed Python calls, over one pooled httpx connection.

::

    with Client() as gefion:                       # --server / GEFION_SERVER / default
        result = gefion.submit(open("job.sh").read(), argv=["--gpus=8"], source="job.sh")
        gefion.job(result.job_id).state
        for line in gefion.follow_logs(result.job_id):
            print(line, end="")

Every request carries an API token (``Authorization: Bearer``): ``token=``, else the one
:func:`gefion.credentials.find_token` finds (``$GEFION_TOKEN``, ``~/.config/gefion/token``,
the data directory's ``admin.token``). The admin calls (users, projects, tokens, QOS,
grants, reservations) are :class:`~gefion.client.admin.AdminCalls`.

A refusal raises :class:`~gefion.client.errors.ApiError`; no answer at all raises
:class:`~gefion.client.errors.ServerUnreachable`. ``submit`` sends an idempotency key (a
fresh uuid4 unless given) and retries with it when the connection fails, so a submission is
neither lost nor made twice: the server answers a repeated key with the first ids.
"""

from __future__ import annotations

import os
import pwd
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from gefion import __version__
from gefion.client.admin import AdminCalls
from gefion.client.errors import ApiError, ServerUnreachable
from gefion.client.models import JobEvent, JobInfo, JobPage, NodeInfo, QueueEntry, SubmitResult

DEFAULT_SERVER = "http://127.0.0.1:8642"
#: Answers that a retried submission may safely be sent again after (same key).
_RETRY_STATUS = frozenset({502, 503, 504})


def server_url(explicit: str | None = None) -> str:
    """``explicit`` (``--server``), else ``$GEFION_SERVER``, else :data:`DEFAULT_SERVER`."""
    return (explicit or os.environ.get("GEFION_SERVER") or DEFAULT_SERVER).rstrip("/")


def login_name() -> str:
    """The caller's Unix login."""
    return pwd.getpwuid(os.getuid()).pw_name


def _csv(values: str | Iterable[str | int] | None) -> str | None:
    if values is None or isinstance(values, str):
        return values
    return ",".join(str(v) for v in values) or None


class Client(AdminCalls):
    """A synchronous client of one Gefion server, as the holder of ``token`` (default: see
    the module). ``user``: whom submitted jobs run as, when not the token's user (admins
    only: a service submitting for others); ``retries`` bounds a submission's resends."""

    def __init__(self, base_url: str | None = None, *, timeout: float = 30.0,
                 token: str | None = None, user: str | None = None, retries: int = 5,
                 transport: httpx.BaseTransport | None = None) -> None:
        from gefion.credentials import find_token

        self.base_url = server_url(base_url)
        self.user = user
        self.retries = retries
        self.timeout = timeout
        headers = {"User-Agent": f"gefion-client/{__version__}"}
        found = find_token(token)
        if found:
            headers["Authorization"] = f"Bearer {found}"
        # trust_env=False: an HTTP_PROXY meant for the internet must not carry requests to
        # the site's own server (127.0.0.1 by default), as the fast `gefion queue` does not.
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers=headers, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- jobs -------------------------------------------------------------------------------
    def submit(self, script: str | None, *, argv: Sequence[str] = (),
               env: Mapping[str, str] | None = None, cwd: str | None = None,
               user: str | None = None, source: str = "<script>",
               script_args: Sequence[str] = (),
               idempotency_key: str | None = None) -> SubmitResult:
        """Submit a batch script (None with ``--wrap`` in ``argv``); ``argv`` are sbatch
        flags. ``env`` is the job's environment source (none unless given), ``cwd`` the
        submit directory (default: this process's)."""
        key = idempotency_key or str(uuid.uuid4())
        body = self._submit_body(script, argv, env, cwd, user, source, script_args)
        response = self._send("POST", "/v1/jobs", json=body,
                              headers={"Idempotency-Key": key}, retry=True)
        return SubmitResult.from_json(response.json(), key)

    def submit_batch(self, submissions: Sequence[Mapping[str, Any]], *,
                     idempotency_key: str | None = None) -> list[SubmitResult]:
        """Several submissions in one request and one transaction, all or nothing (up to
        1,000). Each is a mapping of :meth:`submit`'s arguments (``script``, ``argv``,
        ``env``, ``cwd``, ``user``, ``source``, ``script_args``). A retry with the same key
        returns the same ids."""
        key = idempotency_key or str(uuid.uuid4())
        bodies = [self._submit_body(s.get("script"), s.get("argv", ()), s.get("env"),
                                    s.get("cwd"), s.get("user"), s.get("source", "<script>"),
                                    s.get("script_args", ())) for s in submissions]
        response = self._send("POST", "/v1/jobs/batch", json={"submissions": bodies},
                              headers={"Idempotency-Key": key}, retry=True)
        return [SubmitResult.from_json(r, f"{key}#{i}")
                for i, r in enumerate(response.json()["results"])]

    def test_only(self, script: str | None, *, argv: Sequence[str] = (),
                  env: Mapping[str, str] | None = None, cwd: str | None = None,
                  user: str | None = None, source: str = "<script>",
                  script_args: Sequence[str] = ()) -> dict[str, Any]:
        """The parsed, validated submission (sbatch ``--test-only``); nothing is submitted."""
        body = self._submit_body(script, argv, env, cwd, user, source, script_args)
        result: dict[str, Any] = self._send("POST", "/v1/jobs",
                                            json={**body, "test_only": True}).json()
        return result

    def _submit_body(self, script: str | None, argv: Sequence[str],
                     env: Mapping[str, str] | None, cwd: str | None, user: str | None,
                     source: str, script_args: Sequence[str]) -> dict[str, Any]:
        body = {"script": script, "argv": list(argv), "env": dict(env or {}),
                "cwd": cwd or os.getcwd(), "source": source, "script_args": list(script_args)}
        if user or self.user:
            body["user"] = user or self.user
        return body

    def jobs(self, *, states: str | Iterable[str] | None = None, user: str | None = None,
             project: str | None = None, name: str | None = None,
             array_job_id: int | None = None, after: int | None = None, limit: int = 100,
             signals: bool = False) -> JobPage:
        """One page of jobs by id (``limit`` ≤ 10,000) after job ``after``. ``signals``:
        fill in each ended job's ``signal`` (one more lookup per job on the server)."""
        params = {"state": _csv(states), "user": user, "project": project, "name": name,
                  "array_job_id": array_job_id, "after": after, "limit": limit,
                  "signals": "true" if signals else None}
        body = self._get("/v1/jobs", params)
        return JobPage(tuple(JobInfo.from_json(j) for j in body["jobs"]), body["next_after"])

    def iter_jobs(self, *, page_size: int = 1000, **filters: Any) -> Iterator[JobInfo]:
        """Every job matching ``filters`` (as :meth:`jobs`), fetched a page at a time."""
        after = filters.pop("after", None)
        while True:
            page = self.jobs(after=after, limit=page_size, **filters)
            yield from page.jobs
            if page.next_after is None:
                return
            after = page.next_after

    def job(self, job_id: int) -> JobInfo:
        return JobInfo.from_json(self._get(f"/v1/jobs/{int(job_id)}"))

    def events(self, job_id: int) -> list[JobEvent]:
        body = self._get(f"/v1/jobs/{int(job_id)}/events")
        return [JobEvent.from_json(e) for e in body["events"]]

    def cancel(self, job_id: int) -> JobInfo:
        return self._act(job_id, "cancel")

    def hold(self, job_id: int) -> JobInfo:
        return self._act(job_id, "hold")

    def release(self, job_id: int) -> JobInfo:
        return self._act(job_id, "release")

    def _act(self, job_id: int, action: str) -> JobInfo:
        response = self._send("POST", f"/v1/jobs/{int(job_id)}/{action}")
        return JobInfo.from_json(response.json())

    def logs(self, job_id: int, stream: str = "stdout", tail: int | None = None) -> str:
        """The job's output so far (the last ``tail`` lines), decoded as UTF-8."""
        params = {"stream": stream, "tail": tail}
        return self._send("GET", f"/v1/jobs/{int(job_id)}/logs", params=_clean(params)).text

    def follow_logs(self, job_id: int, stream: str = "stdout",
                    tail: int | None = None) -> Iterator[str]:
        """The output so far, then what the job writes, until it has ended (``tail -f``)."""
        params = _clean({"stream": stream, "tail": tail, "follow": "true"})
        timeout = httpx.Timeout(self.timeout, read=None)  # a quiet job sends nothing for long
        try:
            with self._http.stream("GET", f"/v1/jobs/{int(job_id)}/logs", params=params,
                                   timeout=timeout) as response:
                if not response.is_success:
                    response.read()
                    raise _error(response)
                yield from response.iter_text()
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, _reason(exc)) from None

    def queue(self, *, users: Iterable[str] = (), projects: Iterable[str] = (),
              states: Iterable[str] = (), jobs: Iterable[int | str] = (),
              by_start: bool = False) -> list[QueueEntry]:
        """The jobs not yet ended (squeue), by id or by (planned) start."""
        body = self._get("/v1/queue", self._queue_params(users, projects, states, jobs,
                                                          by_start, "json"))
        return [QueueEntry.from_json(j) for j in body["jobs"]]

    def queue_rendered(self, *, users: Iterable[str] = (), projects: Iterable[str] = (),
                       states: Iterable[str] = (), jobs: Iterable[int | str] = (),
                       by_start: bool = False, fmt: str = "json") -> str:
        """The queue as the server renders it: ``json`` (what ``gefion queue --json``
        prints) or ``text`` (the aligned table, times in this host's time zone)."""
        params = self._queue_params(users, projects, states, jobs, by_start, fmt)
        return self._send("GET", "/v1/queue", params=params).text

    @staticmethod
    def _queue_params(users: Iterable[str], projects: Iterable[str], states: Iterable[str],
                      jobs: Iterable[int | str], by_start: bool, fmt: str) -> dict[str, Any]:
        return _clean({"user": _csv(users), "project": _csv(projects), "state": _csv(states),
                       "job": _csv(jobs), "start": "true" if by_start else None,
                       "format": fmt, "tz": time.localtime().tm_gmtoff})

    # -- nodes and the machine ---------------------------------------------------------------
    def nodes(self) -> list[NodeInfo]:
        return [NodeInfo.from_json(n) for n in self._get("/v1/nodes")["nodes"]]

    def drain(self, name: str, reason: str) -> NodeInfo:
        response = self._send("POST", f"/v1/nodes/{name}/drain", json={"reason": reason})
        return NodeInfo.from_json(response.json())

    def resume(self, name: str) -> NodeInfo:
        response = self._send("POST", f"/v1/nodes/{name}/resume")
        return NodeInfo.from_json(response.json())

    def cluster(self) -> dict[str, Any]:
        return self._get("/v1/cluster")

    def usage_report(self, *, by: str = "project", from_ts: float | None = None,
                     to_ts: float | None = None,
                     projects: str | Iterable[str] | None = None) -> dict[str, Any]:
        """GPU-hours, jobs and energy per ``by`` (project, user, funder, qos) in
        ``[from_ts, to_ts)`` (default: from the beginning to now), as
        ``GET /v1/reports/usage`` answers: ``{"by", "from_ts", "to_ts", "rows", "total"}``."""
        return self._get("/v1/reports/usage", {"by": by, "from": from_ts, "to": to_ts,
                                               "project": _csv(projects)})

    # -- plumbing ---------------------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = self._send("GET", path, params=_clean(params or {})).json()
        return body

    def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              json: Any = None, headers: Mapping[str, str] | None = None,
              retry: bool = False) -> httpx.Response:
        """One request; ``retry`` (idempotent by key) resends after a failed connection
        or a gateway error, backing off from 50 ms to 2 s."""
        for attempt in range(self.retries + 1 if retry else 1):
            if attempt:
                time.sleep(min(2.0, 0.05 * 2 ** (attempt - 1)))
            try:
                response = self._http.request(method, path, params=params, json=json,
                                              headers=headers)
            except httpx.TransportError as exc:
                failure: ApiError = ServerUnreachable(self.base_url, _reason(exc))
                continue
            if response.is_success:
                return response
            failure = _error(response)
            if response.status_code not in _RETRY_STATUS:
                break
        raise failure


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        return "connection refused" if "refused" in text.lower() else text or "cannot connect"
    return str(exc) or exc.__class__.__name__


def _error(response: httpx.Response) -> ApiError:
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"title": response.reason_phrase,
                   "detail": response.text[:500] or f"HTTP {response.status_code}"}
    return ApiError(response.status_code, problem)
