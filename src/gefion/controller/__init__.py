"""The live controller: the wall-clock body around the core (see DESIGN.md).

:class:`~gefion.controller.service.Controller` ties the store (events are the truth), the
scheduler loop (the core's one cycle on a snapshot from the one builder) and an executor
(per-job supervisors) together; the REST API and the CLI call it.
"""
