"""What the controller's loop needs of an executor: the :class:`Executor` protocol, which the
local executor (one host) and the Ray executor (many machines) both satisfy, and the
:class:`NodeChange` an executor reports when a node it runs on leaves or comes back.

The loop, whatever the executor::

    executor.reattach()                   # after a restart: jobs still running
    executor.launch_many(specs)           # per spec: None once it runs, or the refusal
    executor.wait(1.0)                    # something ended (or a node changed), or timeout
    for change in executor.node_changes():  # nodes that left or came back: node events
        ...
    for end in executor.poll():           # each exit, until acknowledged
        store(end)
        executor.acknowledge(end.job_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gefion.executor.errors import ExecutorError
from gefion.executor.spec import JobExit, LaunchSpec


@dataclass(frozen=True, slots=True)
class NodeChange:
    """A node the executor runs on went away (``up`` False) or is back (``up`` True).

    ``reason`` is one line for the node's record (``"Ray node 3f2a… is dead"``).
    """

    node: str
    up: bool
    reason: str = ""


class Executor(Protocol):
    """Runs jobs and says how they ended; see the module docstring for the loop.

    Every method but :meth:`wait` is called from the scheduler's thread only; ``wait`` may
    block in a thread of its own.
    """

    def launch_many(self, specs: list[LaunchSpec]) -> list[ExecutorError | None]: ...

    def cancel(self, job_id: int) -> None: ...

    def preempt(self, job_id: int, grace_s: float) -> None: ...

    def poll(self) -> list[JobExit]: ...

    def wait(self, timeout_s: float) -> bool: ...

    def acknowledge(self, job_id: int) -> None: ...

    def reattach(self) -> list[int]: ...

    def node_changes(self) -> list[NodeChange]: ...

    @property
    def active(self) -> list[int]: ...

    def close(self) -> None: ...
