"""The launcher on one node: a long-lived Ray actor (``gefion-agent-<node>``, detached, pinned
to its Ray node) that runs every gang's part on that node.

A gang's placement group reserves its GPUs on each node; the node's agent starts its work
there. Starting a fresh Ray worker per gang and node costs a second or more (a new Python
process that imports Ray); an agent that is already up starts a batch script in about
0.1 s, and holds no process per idle job.

For each gang part (``job``, ``run``):

- every node runs the tasks ``srun`` starts there (:class:`~.tasks.NodeTasks`);
- the first node (rank 0) also runs the batch script, under the same per-job supervisor as
  the local executor — a :class:`~gefion.executor.local.LocalExecutor` of its own, in
  ``run_dir/<node>/<job>-<run>`` — and serves ``srun``'s step requests on a Unix socket there
  (:mod:`.relay`), fanning each step out to the agents of the nodes it spans.

The executor calls ``join`` (every node), then ``start`` (rank 0); ``wait_end`` blocks until
the batch script ended (rank 0: its exit record) or the part was stopped (others: None) —
and raises in the caller when the agent dies, which is how the executor learns of a lost
node; ``cancel``/``preempt`` go to the supervisor (which signals ``srun``, which forwards to
every task); ``stop`` kills the job's tasks here; ``close`` also removes its run directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gefion.executor.errors import ExecutorError
from gefion.executor.ray.relay import EXIT, FrameWriter, StepHandle, StepServer
from gefion.executor.ray.rendezvous import batch_rendezvous
from gefion.executor.ray.tasks import Chunk, NodeTasks
from gefion.executor.spec import LaunchSpec
from gefion.executor.users import resolve_account

#: The socket ``srun`` reaches the launcher on, in the rank-0 run directory.
STEP_SOCKET = "step.sock"
#: The actor name of a node's agent.
AGENT_PREFIX = "gefion-agent-"


def agent_name(node: str) -> str:
    return f"{AGENT_PREFIX}{node}"


def free_port(address: str) -> int:
    """A TCP port free on ``address`` now (the gang's ``MASTER_PORT``)."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass
class _Part:
    """One gang's part on this node."""

    job_id: int
    run: str
    rank: int
    nodes: tuple[str, ...]
    run_dir: Path
    tasks: NodeTasks
    created_ts: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: threading.Event = field(default_factory=threading.Event)
    local: Any = None  # rank 0: the LocalExecutor of the batch script
    server: StepServer | None = None
    user: str = ""
    exit: dict[str, Any] | None = None
    closed: bool = False


class NodeAgent:
    """See the module docstring. ``run_dir``: the executor's base directory for run
    directories (``<node>/<job>-<run>`` below it); ``namespace``: where the other agents are."""

    def __init__(self, *, node: str, run_dir: str, namespace: str) -> None:
        self.node, self.namespace = node, namespace
        self.run_dir = Path(run_dir)
        self.started_ts = time.time()
        self._parts: dict[tuple[int, str], _Part] = {}
        self._lock = threading.Lock()

    def ping(self) -> str:
        return self.node

    # -- a gang's part -------------------------------------------------------------------------

    def join(self, job_id: int, run: str, rank: int, nodes: Sequence[str]) -> None:
        """Take part in gang (``job_id``, ``run``) as its node ``rank``."""
        key = (job_id, run)
        with self._lock:
            if key not in self._parts:
                self._parts[key] = _Part(
                    job_id, run, rank, tuple(nodes),
                    self.run_dir / self.node / f"{job_id}-{run}",
                    NodeTasks(self.node, prefix_nodes=len(nodes) > 1))

    def _part(self, job_id: int, run: str) -> _Part:
        part = self._parts.get((job_id, run))
        if part is None:
            raise ExecutorError(f"job {job_id} (run {run}) has no part on node {self.node}")
        return part

    def start(self, job_id: int, run: str, spec_json: Mapping[str, Any],
              master_addr: str) -> None:
        """Rank 0: start the batch script of ``spec_json`` (a :class:`LaunchSpec` as JSON)
        with the gang's rendezvous and relay variables; returns once it runs. Raises
        :class:`ExecutorError` when it cannot (nothing started)."""
        from gefion.executor.local import LocalExecutor

        part = self._part(job_id, run)
        spec = LaunchSpec(**spec_json)
        account = resolve_account(spec.user, node=self.node)
        with part.lock:
            if part.closed or part.local is not None:
                return
            if part.run_dir.exists():  # an earlier agent of this run died here
                shutil.rmtree(part.run_dir, ignore_errors=True)
            part.local = LocalExecutor(part.run_dir, launcher="spawn")
            socket_path = str(part.run_dir / STEP_SOCKET)
            part.user = account.name
            part.server = StepServer(
                socket_path, lambda request, writer: _GangStep(self, part, request, writer),
                uid=account.uid, gid=account.gid)
            extra = {
                **batch_rendezvous(master_addr=master_addr,
                                   master_port=free_port(master_addr),
                                   nnodes=len(spec.nodelist), ntasks=spec.ntasks),
                "GEFION_NODE_GPUS": json.dumps(
                    {n: list(g) for n, g in spec.node_gpus.items()}, separators=(",", ":")),
                "GEFION_STEP_SOCKET": socket_path,
                **spec.extra_env,
            }
            part.local.launch(LaunchSpec(**{**spec_json, "extra_env": extra}))

    def wait_end(self, job_id: int, run: str) -> dict[str, Any] | None:
        """Rank 0: the batch script's exit record once it ended. Others: None once
        stopped."""
        part = self._part(job_id, run)
        if part.rank != 0 or part.local is None:
            part.stopped.wait()
            return None
        while part.exit is None:
            with part.lock:
                ends = part.local.poll()
            if ends:
                part.exit = ends[0].to_json()
                break
            part.local.wait(1.0)
        part.tasks.kill()  # as in Slurm: when the batch script ends, the job's steps end
        return part.exit

    def cancel(self, job_id: int, run: str) -> None:
        part = self._part(job_id, run)
        with part.lock:
            if part.local is not None:
                part.local.cancel(job_id)

    def preempt(self, job_id: int, run: str, grace_s: float) -> None:
        part = self._part(job_id, run)
        with part.lock:
            if part.local is not None:
                part.local.preempt(job_id, grace_s)

    def stop(self, job_id: int, run: str) -> None:
        """SIGKILL every task of the part here; ``wait_end`` returns (ranks > 0)."""
        part = self._parts.get((job_id, run))
        if part is not None:
            part.tasks.kill()
            part.stopped.set()

    def close(self, job_id: int, run: str) -> None:
        """After the executor stored the job's end (or gave up on its start): stop, kill
        the batch script if it still runs, remove the run directory, forget the part."""
        with self._lock:
            part = self._parts.pop((job_id, run), None)
        if part is None:
            return
        part.tasks.kill()
        part.stopped.set()
        with part.lock:
            part.closed = True
            if part.server is not None:
                part.server.close()
            if part.local is not None:
                if part.exit is None:  # a start given up on: end it before its files go
                    _end_now(part.local, job_id)
                with contextlib.suppress(ExecutorError):
                    part.local.acknowledge(job_id)
                part.local.close()
        shutil.rmtree(part.run_dir, ignore_errors=True)

    def describe(self) -> list[dict[str, Any]]:
        """The parts here: ``job_id``, ``run``, ``rank``, ``nodes``, ``created_ts``,
        ``ended`` (rank 0: the batch script has ended)."""
        with self._lock:
            parts = list(self._parts.values())
        return [{"job_id": p.job_id, "run": p.run, "rank": p.rank, "nodes": list(p.nodes),
                 "created_ts": p.created_ts, "ended": p.exit is not None,
                 "tasks": p.tasks.running()} for p in parts]

    # -- steps ---------------------------------------------------------------------------------

    def run_tasks(self, job_id: int, run: str, key: str, argv: Sequence[str], cwd: str,
                  tasks: Sequence[tuple[int, Mapping[str, str]]], user: str,
                  label: bool) -> Iterator[Chunk]:
        """Start a step's tasks here; yields their output, then their codes (a Ray
        streaming generator when called through the actor)."""
        part = self._part(job_id, run)
        account = resolve_account(user, node=self.node)
        if not os.path.isdir(cwd):
            cwd = "/tmp"  # as Slurm does when the working directory is missing on a node
        yield from part.tasks.run(key, argv, cwd, tasks, account, label)

    def signal_tasks(self, job_id: int, run: str, key: str, signum: int) -> None:
        part = self._parts.get((job_id, run))
        if part is not None:
            part.tasks.signal(key, signum)

    def kill_tasks(self, job_id: int, run: str, key: str) -> None:
        part = self._parts.get((job_id, run))
        if part is not None:
            part.tasks.kill(key)

    def agent(self, node: str) -> Any:
        """The agent of ``node`` now (a Ray actor handle), looked up by name: not kept, as
        a node that left and rejoined has a new one."""
        import ray

        return ray.get_actor(agent_name(node), namespace=self.namespace)


def _end_now(local: Any, job_id: int, timeout_s: float = 120.0) -> None:
    """Cancel a batch script nobody will hear of and wait (bounded) until it ended."""
    with contextlib.suppress(ExecutorError):
        local.cancel(job_id)
    deadline = time.monotonic() + timeout_s
    while not local.poll() and time.monotonic() < deadline:
        local.wait(0.5)


class _GangStep(StepHandle):
    """A step of ``srun``: its tasks grouped by node, each node's batch run by that node's
    agent (this one's directly, the others' through Ray), output relayed to srun."""

    def __init__(self, agent: NodeAgent, part: _Part, request: Mapping[str, Any],
                 writer: FrameWriter) -> None:
        self.agent, self.part = agent, part
        self.key = f"{part.job_id}.{int(request['step_id'])}.{time.monotonic_ns()}"
        by_node: dict[str, list[tuple[int, dict[str, str]]]] = {}
        for task in request["tasks"]:
            node = str(task["node"])
            if node not in part.nodes:
                raise ExecutorError(f"node {node} is not a node of job {part.job_id}")
            by_node.setdefault(node, []).append((int(task["procid"]), dict(task["env"])))
        self.order = [int(t["procid"]) for t in request["tasks"]]
        self.codes: dict[int, int] = {}
        self.writer = writer
        args = (part.job_id, part.run, self.key, list(request["argv"]), str(request["cwd"]))
        label = bool(request.get("label"))
        self.agents: dict[str, Any] = {node: agent if node == agent.node else agent.agent(node)
                                       for node in part.nodes}
        self.threads = []
        for node, tasks in by_node.items():
            if node == agent.node:
                chunks: Any = agent.run_tasks(*args, tasks, part.user, label)
            else:
                chunks = self.agents[node].run_tasks.remote(*args, tasks, part.user, label)
            thread = threading.Thread(target=self._relay, args=(node, tasks, chunks),
                                      name=f"gefion-step-{node}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _relay(self, node: str, tasks: list[tuple[int, dict[str, str]]], chunks: Any) -> None:
        codes: list[int] = []
        try:
            for item in chunks:
                if not isinstance(item, tuple):  # an ObjectRef of the streaming generator
                    import ray

                    item = ray.get(item)
                tag, data = item
                if tag == EXIT:
                    codes = list(data)
                else:
                    self.writer.send(tag, data)
        except Exception as exc:  # the node's agent died: its tasks with it
            self.writer.send(b"E", f"srun: error: {node}: lost: {type(exc).__name__}\n"
                             .encode())
        if len(codes) != len(tasks):
            codes = [-9] * len(tasks)
        for (procid, _), code in zip(tasks, codes, strict=True):
            self.codes[procid] = code

    def _each(self, call: str, *args: Any) -> None:
        part = self.part
        for node in part.nodes:
            try:
                if node == self.agent.node:
                    getattr(self.agent, call)(part.job_id, part.run, self.key, *args)
                else:
                    getattr(self.agents[node], call).remote(part.job_id, part.run,
                                                            self.key, *args)
            except Exception:  # a node that is gone has no tasks left to signal
                pass

    def signal(self, signum: int) -> None:
        self._each("signal_tasks", signum)

    def kill(self) -> None:
        self._each("kill_tasks")

    def wait(self) -> list[int]:
        for thread in self.threads:
            thread.join()
        return [self.codes.get(procid, -9) for procid in self.order]
