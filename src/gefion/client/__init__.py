"""A typed Python client of Gefion's REST API (:mod:`gefion.api`).

::

    from gefion.client import Client, ApiError
    with Client("http://127.0.0.1:8642") as gefion:
        job_id = gefion.submit(script_text, argv=["--gpus=8"], source="train.sh").job_id
        print(gefion.job(job_id).reason)

Modules: :mod:`~gefion.client.client` (:class:`Client`), :mod:`~gefion.client.models` (the
answers, frozen dataclasses), :mod:`~gefion.client.errors` (:class:`ApiError`).
"""

from gefion.client.client import DEFAULT_SERVER, Client, login_name, server_url
from gefion.client.errors import ApiError, ServerUnreachable
from gefion.client.models import (
    JobEvent,
    JobInfo,
    JobPage,
    NodeInfo,
    QueueEntry,
    SubmitResult,
)

__all__ = [
    "DEFAULT_SERVER",
    "ApiError",
    "Client",
    "JobEvent",
    "JobInfo",
    "JobPage",
    "NodeInfo",
    "QueueEntry",
    "ServerUnreachable",
    "SubmitResult",
    "login_name",
    "server_url",
]
