"""Executors: the local one runs jobs on this host under per-job supervisors that outlive the
controller (see :mod:`gefion.executor.local`); :mod:`gefion.executor.ray` runs gangs on the
nodes of a Ray cluster. Both are :class:`Executor` s (:mod:`gefion.executor.base`).

Public API: :class:`Executor`, :class:`NodeChange`, :class:`LocalExecutor`,
:class:`LaunchSpec`, :class:`JobExit`, :class:`ExecutorError`, :func:`slurm_env`,
:func:`place_tasks`. Imported lazily: a supervisor
(``python -m gefion.executor.supervisor``) and the ``srun`` shim import this package too, and
must not pay for the controller's side of it.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing costs a supervisor ~10 ms
if TYPE_CHECKING:
    from gefion.executor.base import Executor, NodeChange
    from gefion.executor.env import slurm_env
    from gefion.executor.errors import ExecutorError
    from gefion.executor.local import LocalExecutor
    from gefion.executor.placement import TaskPlacement, place_tasks
    from gefion.executor.spec import JobExit, LaunchSpec

__all__ = ["Executor", "ExecutorError", "JobExit", "LaunchSpec", "LocalExecutor", "NodeChange",
           "TaskPlacement", "place_tasks", "slurm_env"]

_WHERE = {
    "Executor": "base", "NodeChange": "base", "ExecutorError": "errors", "JobExit": "spec",
    "LaunchSpec": "spec",
    "LocalExecutor": "local", "TaskPlacement": "placement", "place_tasks": "placement",
    "slurm_env": "env",
}


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(f"gefion.executor.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'gefion.executor' has no attribute {name!r}")
