"""The executor's error: what a launch, cancel or re-attach refuses, said in one line.

::

    GefionError                  (gefion.core.errors)
    └── ExecutorError            a job the local executor cannot launch or control

Job outcomes are never errors: a script that cannot be executed, an output directory that does
not exist or a supervisor that died all end the *job* (FAILED, with a reason in its
:class:`~gefion.executor.spec.JobExit`). ``ExecutorError`` is for requests that change nothing:
an unknown user, a job id already in use, a run directory held by another controller.
"""

from __future__ import annotations

from gefion.core.errors import GefionError


class ExecutorError(GefionError):
    """A request the executor refuses before anything starts (or a supervisor that never did)."""
