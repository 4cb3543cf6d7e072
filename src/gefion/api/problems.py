"""Errors as RFC 9457 problem bodies (``application/problem+json``).

Every refusal the API gives is one of these, with the status the exception's class says::

    InputError (SpecError, SbatchError...)  400  bad-input   + field, source, line
    ├── NotFoundError                       404  not-found   + field
    request body/query/path validation      422  invalid-request + field, errors
    StateError                              409  conflict    (cancel a finished job...)
    LogAccessError                          403  forbidden   (a log that is not the job's)
    AccessError (a role's limit)            403  forbidden   + field   } gefion.api.access:
    NotVisible (not yours to see)           404  not-found   + field   } logged as
    AuthError (no valid token)              401  unauthorized          } access.denied
    other GefionError (PolicyError...)      400  bad-input
    unknown route, wrong method             404 / 405 (HTTP's own, as problems)
    anything else                           500  internal    (no traceback; logged)

A refusal happens before anything is written: the controller validates a request fully
before it commits (DESIGN.md, invariant 7).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from gefion.api.logs import LogAccessError
from gefion.core.errors import GefionError, InputError, StateError
from gefion.store import NotFoundError

log = logging.getLogger("gefion.api")

PROBLEM_TYPE = "application/problem+json"
#: ``type`` URIs of our problems; a client may switch on them (stable).
TYPE_BASE = "urn:gefion:problem:"


def problem(status: int, title: str, detail: str, *, kind: str,
            **members: Any) -> Response:
    """A problem response; ``members`` that are None are left out."""
    body: dict[str, Any] = {"type": TYPE_BASE + kind, "title": title, "status": status,
                            "detail": detail}
    body.update({k: v for k, v in members.items() if v is not None})
    return Response(json.dumps(body, ensure_ascii=False).encode(), status_code=status,
                    media_type=PROBLEM_TYPE)


def _input_error(exc: InputError, status: int, title: str, kind: str) -> Response:
    return problem(status, title, exc.message, kind=kind, field=exc.field, source=exc.source,
                   line=exc.line)


async def on_not_found(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFoundError)
    return _input_error(exc, 404, "Not found", "not-found")


async def on_input_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, InputError)
    return _input_error(exc, 400, "Bad input", "bad-input")


async def on_state_error(_: Request, exc: Exception) -> Response:
    return problem(409, "Conflict", str(exc), kind="conflict")


async def on_forbidden(_: Request, exc: Exception) -> Response:
    return problem(403, "Forbidden", str(exc), kind="forbidden")


async def on_gefion_error(_: Request, exc: Exception) -> Response:
    return problem(400, "Bad input", str(exc), kind="bad-input")


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "argv", 0)`` → ``argv[0]``; ``("query", "limit")`` → ``limit``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


async def on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": "body" if e.get("type") == "json_invalid"  # loc: a char offset
               else field_path(e.get("loc", ())), "message": str(e.get("msg", ""))}
              for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    return problem(422, "Invalid request", first["message"], kind="invalid-request",
                   field=first["field"], errors=errors)


async def on_http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
    response = problem(exc.status_code, _title(exc.status_code), str(exc.detail), kind=kind)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("internal error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal error",
                   "the server failed to answer this request; its log has the details",
                   kind="internal")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install(app: FastAPI) -> None:
    """Register the handlers; the most specific class wins (Starlette looks up the MRO)."""
    app.add_exception_handler(NotFoundError, on_not_found)
    app.add_exception_handler(InputError, on_input_error)
    app.add_exception_handler(StateError, on_state_error)
    app.add_exception_handler(LogAccessError, on_forbidden)
    app.add_exception_handler(GefionError, on_gefion_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
