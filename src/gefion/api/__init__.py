"""Gefion's REST API (FastAPI), served by ``gefion up`` on 127.0.0.1.

::

    app = create_app(controller)        # a started gefion.controller.Controller
    uvicorn.run(app, host="127.0.0.1", port=8642)

Modules: :mod:`~gefion.api.app` (``create_app``), :mod:`~gefion.api.jobs` and
:mod:`~gefion.api.nodes` (the ``/v1`` routes), :mod:`~gefion.api.schemas` (request bodies),
:mod:`~gefion.api.views` (answers), :mod:`~gefion.api.queue` and
:mod:`~gefion.api.queue_render` (the in-memory queue behind ``GET /v1/queue``, and its
table), :mod:`~gefion.api.logs` (tail and follow), :mod:`~gefion.api.problems` (errors as
RFC 9457 problem bodies), :mod:`~gefion.api.server` (uvicorn in a thread, for tests and
benchmarks).

Serving it yourself: bind the listening socket with ``proto=socket.IPPROTO_TCP`` (or let
uvicorn bind it). asyncio turns Nagle's algorithm off only on sockets whose ``proto`` says
TCP; on a ``socket.socket(AF_INET)`` (proto 0) every answer, written as headers then body,
waits ~40 ms for the client's delayed ACK.

**Access** (docs/access.md): every ``/v1`` route but ``/v1/health`` needs an API token
(``Authorization: Bearer gfn_...``), resolved to a principal by :mod:`~gefion.api.auth`;
what each role may see and do is :mod:`~gefion.api.access`, and every refusal is an
``access.denied`` event (:mod:`~gefion.api.denials`). People, projects and tokens are
:mod:`~gefion.api.people`'s routes; QOS, grants and reservations :mod:`~gefion.api.allocations`'.
Job logs are read only from regular files owned by the job's user (see :mod:`~gefion.api.logs`).
"""

from gefion.api.app import create_app

__all__ = ["create_app"]
