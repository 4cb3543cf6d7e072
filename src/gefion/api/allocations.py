"""What projects may use, under ``/v1``: QOS, GPU-hour grants and advance reservations.

They are data here — created, listed, deleted; charging grants and honouring reservations
in the scheduling cycle read them from the store (``Store.list_grants()``...): a change wakes
the scheduler, which reads them again at its next step (:mod:`gefion.controller.tenancy`). Everyone
signed in reads QOS and reservations (as Slurm's ``sacctmgr show qos`` and ``scontrol show
res``); grants are a project's business: its members', operators' and admins'. Admins
define QOS and grants; operators and admins book and delete reservations.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from gefion.api.access import require_admin, require_staff, visible_project
from gefion.api.auth import Who
from gefion.api.tenancy_schemas import GrantBody, QosBody, ReservationBody
from gefion.api.views import json_response
from gefion.controller.service import Controller
from gefion.core.errors import GefionError, InputError
from gefion.core.reservations import Reservation
from gefion.core.tenancy import QOS, Grant
from gefion.formats.hostlist import expand_all
from gefion.store import Store
from gefion.store.tenancy import grant_to_json, qos_to_json, reservation_to_json


def reservation_json(r: Reservation) -> dict[str, Any]:
    from gefion.formats.hostlist import compress

    return {**reservation_to_json(r), "nodelist": compress(r.nodes)}


def router(controller: Controller) -> APIRouter:
    api = APIRouter(tags=["allocations"])

    def store() -> Store:
        assert controller.store is not None
        return controller.store

    @api.get("/qos", summary="Every QOS")
    def list_qos(who: Who) -> Response:
        return json_response({"qos": [qos_to_json(q) for q in store().list_qos()]})

    @api.post("/qos", status_code=201, summary="Define a QOS (admins)")
    def create_qos(body: QosBody, who: Who) -> Response:
        require_admin(who, "define QOS", target=f"qos {body.name}")
        qos = QOS(body.name, priority=body.priority, preemptible=body.preemptible,
                  preempts=frozenset(body.preempts), max_time_limit_s=body.max_time_limit_s,
                  max_gpus_per_user=body.max_gpus_per_user, grace_s=body.grace_s,
                  usage_factor=body.usage_factor, requeue=body.requeue)
        made = store().create_qos(qos, ts=controller.now(), by=who.name)
        controller.tenancy_changed()
        return json_response(qos_to_json(made), 201)

    @api.get("/grants", summary="Grants of your projects (operators, admins: all)")
    def list_grants(who: Who, project: str | None = None) -> Response:
        if project is not None:
            visible_project(who, project)
        grants = [g for g in store().list_grants(project) if who.sees_project(g.project)]
        return json_response({"grants": [grant_to_json(g) for g in grants]})

    @api.post("/grants", status_code=201, summary="Grant GPU-hours to a project (admins)")
    def create_grant(body: GrantBody, who: Who) -> Response:
        require_admin(who, "grant GPU-hours", target=f"project {body.project}")
        now = controller.now()
        valid_to = float("inf") if body.valid_to_ts is None else body.valid_to_ts
        grant = Grant(body.id or "", body.project, body.gpu_hours,
                      valid_from_s=now if body.valid_from_ts is None else body.valid_from_ts,
                      valid_to_s=valid_to, funder=body.funder)
        made = store().create_grant(grant, ts=now, by=who.name)
        controller.tenancy_changed()  # a project out of hours may start at once
        return json_response(grant_to_json(made), 201)

    @api.get("/reservations", summary="Every reservation")
    def list_reservations(who: Who) -> Response:
        return json_response({"reservations": [reservation_json(r)
                                               for r in store().list_reservations()]})

    @api.post("/reservations", status_code=201,
              summary="Book nodes for a time window, once or recurring (operators, admins)")
    def create_reservation(body: ReservationBody, who: Who) -> Response:
        require_staff(who, "book reservations", target=f"reservation {body.name}")
        try:
            nodes = expand_all(body.nodes)
        except GefionError as exc:
            raise InputError(str(exc), field="nodes") from None
        known = {n.name for n in store().list_nodes()}
        unknown = [n for n in nodes if n not in known]
        if unknown:
            raise InputError(f"no such node{'s' if len(unknown) > 1 else ''}: "
                             f"{', '.join(unknown[:5])}", field="nodes")
        reservation = Reservation(body.name, tuple(dict.fromkeys(nodes)), body.start_ts,
                                  body.end_ts, period_s=body.period_s, until_s=body.until_ts,
                                  projects=frozenset(body.projects),
                                  users=frozenset(body.users), maintenance=body.maintenance)
        made = store().create_reservation(reservation, ts=controller.now(), by=who.name)
        controller.tenancy_changed()
        return json_response(reservation_json(made), 201)

    @api.delete("/reservations/{name}", summary="Delete a reservation (operators, admins)")
    def delete_reservation(name: str, who: Who) -> Response:
        require_staff(who, "delete reservations", target=f"reservation {name}")
        store().delete_reservation(name, ts=controller.now(), by=who.name)
        controller.tenancy_changed()
        return json_response({"name": name, "deleted": True})

    return api
