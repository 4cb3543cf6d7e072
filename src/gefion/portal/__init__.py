"""The web portal: pages served by the controller beside its API, no build step.

::

    app.include_router(portal.router(controller))   # in gefion.api.create_app

Pages (``/machine``, ``/queue``, ``/jobs/{id}``, ``/projects``, ``/projects/{name}``,
``/operator``, ``/twin``, ``/login``) are HTML shells with plain CSS and vanilla ES modules
shipped as package data (``static/``, ``templates/``); their scripts read the ``/v1`` API
and refetch when the live feed (``/portal/events``, server-sent events) says that the
controller changed. Who may see what goes through one function,
:func:`gefion.portal.auth.current_principal` — the principal of the API session the
login opened, so the portal shows and allows what the API does.
See docs/portal.md.
"""

from gefion.portal.pages import router

__all__ = ["router"]
