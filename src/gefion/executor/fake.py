"""An executor that runs nothing: the controller's loop against it is the real one, and a test
ends jobs, loses nodes and brings them back by hand (the seam's fake, as the style asks).

::

    fake = FakeExecutor()
    scheduler = Scheduler(store, fake, cluster, policy, kill_grace_s=1)
    scheduler.step()                       # starts jobs: fake.launched[job_id] is the spec
    fake.end(job_id, JobState.COMPLETED)   # the job's script ended
    fake.lose_node("n2")                   # node.down; its running gangs end NODE_FAIL
    fake.rejoin("n2")                      # node.up
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gefion.core.jobs import JobState
from gefion.executor.base import NodeChange
from gefion.executor.errors import ExecutorError
from gefion.executor.spec import JobExit, LaunchSpec


class FakeExecutor:
    """See the module docstring. ``clock`` stamps the exits (default: the wall clock)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.launched: dict[int, LaunchSpec] = {}  # running, by job id
        self.cancelled: list[int] = []
        self.preempted: list[tuple[int, float]] = []
        self._exits: dict[int, JobExit] = {}  # ended, not acknowledged
        self._reported: set[int] = set()
        self._changes: list[NodeChange] = []

    # -- the Executor protocol -----------------------------------------------------------------

    def launch_many(self, specs: list[LaunchSpec]) -> list[ExecutorError | None]:
        out: list[ExecutorError | None] = []
        for spec in specs:
            if spec.job_id in self.launched or spec.job_id in self._exits:
                out.append(ExecutorError(f"job {spec.job_id} is already known"))
                continue
            self.launched[spec.job_id] = spec
            out.append(None)
        return out

    def cancel(self, job_id: int) -> None:
        self.cancelled.append(job_id)
        self.end(job_id, JobState.CANCELLED, exit_code=0, signal=15)

    def preempt(self, job_id: int, grace_s: float) -> None:
        self.preempted.append((job_id, grace_s))
        self.end(job_id, JobState.PREEMPTED, exit_code=0, signal=15)

    def poll(self) -> list[JobExit]:
        out = [e for j, e in self._exits.items() if j not in self._reported]
        self._reported.update(e.job_id for e in out)
        return sorted(out, key=lambda e: (e.end_ts, e.job_id))

    def wait(self, timeout_s: float) -> bool:
        """Whether there is something to report; if not, after ``timeout_s`` (as the real
        executors block), so that a watcher thread does not spin."""
        if self._changes or any(j not in self._reported for j in self._exits):
            return True
        time.sleep(timeout_s)
        return False

    def acknowledge(self, job_id: int) -> None:
        if job_id not in self._exits:
            raise ExecutorError(f"job {job_id} has no exit to acknowledge")
        del self._exits[job_id]
        self._reported.discard(job_id)

    def reattach(self) -> list[int]:
        return sorted(self.launched)

    def node_changes(self) -> list[NodeChange]:
        changes, self._changes = self._changes, []
        return changes

    @property
    def active(self) -> list[int]:
        return sorted(set(self.launched) | {j for j in self._exits if j not in self._reported})

    def close(self) -> None:
        pass

    # -- what a test does ----------------------------------------------------------------------

    def end(self, job_id: int, state: JobState, *, exit_code: int = 0,
            signal: int | None = None, reason: str | None = None,
            node: str | None = None) -> None:
        """Job ``job_id`` ended so (a job that is not running is left alone)."""
        spec = self.launched.pop(job_id, None)
        if spec is None:
            return
        now = self.clock()
        self._exits[job_id] = JobExit(job_id, state, exit_code, signal, now, now,
                                      reason=reason, node=node)

    def lose_node(self, node: str) -> list[int]:
        """Node ``node`` left: it goes down, and every gang on it ends NODE_FAIL. The ids
        of those gangs."""
        self._changes.append(NodeChange(node, False, "lost (fake)"))
        gone = [j for j, spec in self.launched.items() if node in spec.nodelist]
        for job_id in gone:
            self.end(job_id, JobState.NODE_FAIL, exit_code=1,
                     reason=f"node {node} was lost", node=node)
        return gone

    def rejoin(self, node: str) -> None:
        self._changes.append(NodeChange(node, True, "back (fake)"))
