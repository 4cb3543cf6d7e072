"""The Ray executor: each job a gang — a placement group pinned to exactly the nodes the core
chose, and its part on each node run by that node's agent (:mod:`.agent`) — with the same
interface as the local executor (:class:`~gefion.executor.base.Executor`), so the
controller's loop drives either.

A launch, for each job (all jobs of a cycle side by side):

1. a detached placement group ``gefion-<job>-<run>`` of one bundle per node —
   ``{"CPU": 0.01, "GPU": <the job's GPUs there>}`` — each bundle pinned to its node by the
   label selector ``ray.io/node-id``: Ray holds the job's GPUs on each node while it runs;
2. once placed, every node's agent joins the gang, and the first node's starts the batch
   script under its supervisor; ``launch_many`` returns once it runs.

Agents (one detached actor per node, ``gefion-agent-<node>``, pinned to it) are started when
the executor starts and when a node (re)joins, so a launch starts no Ray worker.

How a gang ends:

- the batch script ends (COMPLETED, FAILED, TIMEOUT, CANCELLED, PREEMPTED: the supervisor
  says which) → every agent kills what is left of the job on its node → reported;
- a node of the gang is lost (dead in Ray's node table, or its agent died) → the gang is
  stopped on its other nodes (the batch script cancelled, with the job's kill grace) →
  reported NODE_FAIL naming the lost node; the controller requeues it if it may;
- it cannot be placed or started within ``launch_timeout_s`` → reported FAILED with reason
  :data:`NEVER_STARTED` (the controller starts it again).

The placement group goes as soon as the gang's end is known (its GPUs are free for the next
gang); ``acknowledge`` then closes its parts (the exit record stays with the first node's
agent until then, so a controller that dies before storing the end hears of it again).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gefion.core.jobs import JobState
from gefion.executor.base import NodeChange
from gefion.executor.errors import ExecutorError
from gefion.executor.local import NEVER_STARTED
from gefion.executor.ray.agent import NodeAgent, agent_name
from gefion.executor.ray.nodes import NodeTable
from gefion.executor.spec import JobExit, LaunchSpec

log = logging.getLogger("gefion.executor.ray")

#: Namespace of the agents and placement groups.
NAMESPACE = "gefion"
#: CPUs a gang holds in each bundle: the job's processes are not Ray's to count.
BUNDLE_CPUS = 0.01
#: How long cleanup waits for agents to answer (seconds).
CALL_TIMEOUT_S = 10.0
#: Threads of an agent: every running gang part holds one (its ``wait_end``), every step one.
AGENT_CONCURRENCY = 1000


@dataclass
class _Gang:
    job_id: int
    run: str
    nodes: tuple[str, ...]
    start_ts: float
    pg: Any
    agents: list[Any] = field(default_factory=list)  # node order; None: gone
    end_ref: Any = None  # rank 0's wait_end()
    watch: dict[Any, int] = field(default_factory=dict)  # wait_end() refs of ranks > 0 → rank
    failed: tuple[str, str] | None = None  # (node, reason) of a lost node
    exit: JobExit | None = None  # decided; reported until acknowledged
    removed: bool = False  # parts closed, placement group removed


class RayExecutor:
    """Runs gangs on a Ray cluster this process is connected to (``ray.init`` done, with
    ``namespace=NAMESPACE``); ``nodes`` is the table of the cluster's Gefion nodes.
    ``run_dir`` is where, on each node, agents keep their jobs' run directories."""

    def __init__(self, run_dir: Path, nodes: NodeTable, *, launch_timeout_s: float = 30.0,
                 namespace: str = NAMESPACE) -> None:
        import ray

        self._ray = ray
        self.run_dir = Path(run_dir).absolute()
        self.nodes = nodes
        self.launch_timeout_s = launch_timeout_s
        self.namespace = namespace
        self._gangs: dict[int, _Gang] = {}
        self._reported: set[int] = set()  # reported by poll, not yet acknowledged
        self._lock = threading.RLock()
        self._closed = False
        self._agent_class = ray.remote(NodeAgent)
        self._agents: dict[str, tuple[str, Any]] = {}  # node → (Ray node id, handle)
        self._ensure_agents()

    # -- agents --------------------------------------------------------------------------------

    def _agent(self, node: str) -> Any:
        """The agent of ``node``'s current Ray incarnation (started if need be)."""
        ray_node = self.nodes.get(node)
        if ray_node is None or not ray_node.alive:
            raise ExecutorError(f"node {node} is not in the Ray cluster")
        held = self._agents.get(node)
        if held is not None and held[0] == ray_node.node_id:
            return held[1]
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        handle = self._agent_class.options(
            name=agent_name(node), namespace=self.namespace, lifetime="detached",
            get_if_exists=True, num_cpus=0, max_concurrency=AGENT_CONCURRENCY, max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(ray_node.node_id, soft=False),
        ).remote(node=node, run_dir=str(self.run_dir), namespace=self.namespace)
        self._agents[node] = (ray_node.node_id, handle)
        return handle

    def _ensure_agents(self) -> None:
        """An agent on every alive node (their start-up is not waited for)."""
        for node in self.nodes.names:
            if self.nodes.alive(node):
                try:
                    self._agent(node)
                except Exception as exc:  # a node leaving right now: next time
                    log.warning("no agent on %s yet: %s", node, exc)

    # -- launching -----------------------------------------------------------------------------

    def launch(self, spec: LaunchSpec) -> None:
        error = self.launch_many([spec])[0]
        if error is not None:
            raise error

    def launch_many(self, specs: list[LaunchSpec]) -> list[ExecutorError | None]:
        """Start each spec's gang; per spec None once its batch script runs (or once its
        failure to start is queued for :meth:`poll`), or the refusal (nothing started)."""
        from ray.util.placement_group import placement_group

        results: list[ExecutorError | None] = [None] * len(specs)
        began = time.monotonic()
        self.nodes.refresh(force=True)
        begun: list[tuple[int, LaunchSpec, _Gang]] = []
        for k, spec in enumerate(specs):
            if spec.job_id in self._gangs:
                results[k] = ExecutorError(f"job {spec.job_id} is already known to this "
                                           "executor")
                continue
            gang = _Gang(spec.job_id, secrets.token_hex(4), tuple(spec.nodelist), time.time(),
                         pg=None)
            with self._lock:
                self._gangs[spec.job_id] = gang
            missing = [n for n in gang.nodes if not self.nodes.alive(n)]
            if missing:
                self._never_started(gang, f"node {missing[0]} is not in the Ray cluster")
                continue
            node_gpus = spec.node_gpus or {spec.node: spec.gpus}
            bundles, selectors = [], []
            for node in gang.nodes:
                bundle: dict[str, float] = {"CPU": BUNDLE_CPUS}
                if node_gpus.get(node):
                    bundle["GPU"] = float(len(node_gpus[node]))
                bundles.append(bundle)
                ray_node = self.nodes.get(node)
                assert ray_node is not None
                selectors.append({"ray.io/node-id": ray_node.node_id})
            gang.pg = placement_group(bundles, strategy="STRICT_SPREAD",
                                      bundle_label_selector=selectors, lifetime="detached",
                                      name=f"gefion-{gang.job_id}-{gang.run}")
            gang.agents = [self._agent(node) for node in gang.nodes]
            begun.append((k, spec, gang))
        deadline = time.monotonic() + self.launch_timeout_s
        if begun:
            refs = [gang.pg.ready() for _, _, gang in begun]
            ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=self.launch_timeout_s)
        started: list[tuple[int, LaunchSpec, _Gang, Any]] = []
        for (k, spec, gang), ref in zip(begun, refs if begun else [], strict=True):
            if ref not in ready:
                self._never_started(gang, "Ray could not place its bundles within "
                                          f"{self.launch_timeout_s:g} s")
                continue
            try:  # every node takes part before the script can srun there
                self._ray.get([agent.join.remote(gang.job_id, gang.run, rank, gang.nodes)
                               for rank, agent in enumerate(gang.agents)],
                              timeout=max(0.0, deadline - time.monotonic()))
            except self._ray.exceptions.RayError as exc:
                self._never_started(gang, f"an agent did not answer: {type(exc).__name__}")
                continue
            first = self.nodes.get(gang.nodes[0])
            assert first is not None
            started.append((k, spec, gang, gang.agents[0].start.remote(
                gang.job_id, gang.run, spec.to_json(), first.address)))
        for k, spec, gang, ref in started:
            try:
                self._ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
            except self._ray.exceptions.GetTimeoutError:
                self._never_started(gang, "its agent did not start the script within "
                                          f"{self.launch_timeout_s:g} s")
                continue
            except self._ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, Exception) else exc
                if isinstance(cause, ExecutorError):  # refused: an unknown user, say
                    results[k] = cause
                    self._remove(gang)
                    with self._lock:
                        self._gangs.pop(spec.job_id, None)
                    continue
                self._never_started(gang, f"its agent failed: {cause}")
                continue
            except self._ray.exceptions.RayError as exc:  # an agent died: a node just left
                self._never_started(gang, f"its agent was lost: {type(exc).__name__}")
                continue
            self._watch(gang)
        if begun:
            log.debug("launched %d gang(s) in %.3f s", len(begun), time.monotonic() - began)
        return results

    def _watch(self, gang: _Gang) -> None:
        with self._lock:
            gang.end_ref = gang.agents[0].wait_end.remote(gang.job_id, gang.run)
            gang.watch = {agent.wait_end.remote(gang.job_id, gang.run): rank
                          for rank, agent in enumerate(gang.agents)
                          if rank and agent is not None}

    def _never_started(self, gang: _Gang, why: str) -> None:
        """Nothing of the job ran: its parts and placement group go now."""
        log.warning("job %s not started: %s", gang.job_id, why)
        now = time.time()
        self._remove(gang, wait=False)
        with self._lock:
            gang.exit = JobExit(gang.job_id, JobState.FAILED, 1, None, now, now,
                                reason=NEVER_STARTED)

    # -- control -------------------------------------------------------------------------------

    def _gang(self, job_id: int) -> _Gang:
        gang = self._gangs.get(job_id)
        if gang is None:
            raise ExecutorError(f"job {job_id} is not known to this executor")
        return gang

    def cancel(self, job_id: int) -> None:
        """End the job on every node: SIGTERM to the batch script and (through ``srun``)
        every task, SIGKILL after its ``kill_grace_s``; it ends CANCELLED."""
        gang = self._gang(job_id)
        if gang.exit is None and gang.agents and gang.agents[0] is not None:
            gang.agents[0].cancel.remote(gang.job_id, gang.run)

    def preempt(self, job_id: int, grace_s: float) -> None:
        """Evict the job from every node: its ``--signal`` (else SIGTERM), SIGKILL after
        ``grace_s``; it ends PREEMPTED."""
        if grace_s < 0:
            raise ExecutorError(f"job {job_id}: preemption grace must be >= 0 s, got {grace_s}")
        gang = self._gang(job_id)
        if gang.exit is None and gang.agents and gang.agents[0] is not None:
            gang.agents[0].preempt.remote(gang.job_id, gang.run, grace_s)

    # -- learning how gangs ended --------------------------------------------------------------

    def poll(self) -> list[JobExit]:
        """Gangs that ended since the last call (each once, until acknowledged), oldest
        end first."""
        self.nodes.refresh()
        ended: list[JobExit] = []
        with self._lock:
            gangs = list(self._gangs.values())
        for gang in gangs:
            if gang.exit is None:
                self._check(gang)
            if gang.exit is not None and gang.job_id not in self._reported:
                self._reported.add(gang.job_id)
                ended.append(gang.exit)
        return sorted(ended, key=lambda e: (e.end_ts, e.job_id))

    def _lost(self, gang: _Gang, rank: int, exc: Exception) -> None:
        """The agent of node ``rank`` failed the gang: the node is lost, or just the agent."""
        node = gang.nodes[rank]
        self.nodes.refresh(force=True)
        if self.nodes.alive(node):
            self._fail(gang, node, f"the agent on node {node} was lost ({type(exc).__name__})")
        else:
            self._fail(gang, node, self._dead(node))

    def _dead(self, node: str) -> str:
        ray_node = self.nodes.get(node)
        return (f"node {node} was lost (Ray node "
                f"{ray_node.node_id[:12] if ray_node else '?'} is dead)")

    def _check(self, gang: _Gang) -> None:
        ray = self._ray
        if gang.end_ref is None:
            return
        if gang.failed is None:
            lost = [n for n in gang.nodes if not self.nodes.alive(n)]
            if lost:
                self._fail(gang, lost[0], self._dead(lost[0]))
        with self._lock:
            watched = list(gang.watch)
        if gang.failed is None and watched:
            ready, _ = ray.wait(watched, num_returns=len(watched), timeout=0)
            for ref in ready:
                with self._lock:
                    rank = gang.watch.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as exc:
                    self._lost(gang, rank, exc)
                    break
        ready, _ = ray.wait([gang.end_ref], timeout=0)
        record: dict[str, Any] | None = None
        if ready:
            try:
                record = ray.get(gang.end_ref)
            except ray.exceptions.RayError as exc:
                if gang.failed is None:
                    self._lost(gang, 0, exc)
        elif gang.failed is None or gang.failed[0] != gang.nodes[0]:
            return  # rank 0 still runs the batch script (or is stopping it)
        end = JobExit.from_json(record) if record else JobExit(
            gang.job_id, JobState.FAILED, 1, None, gang.start_ts, time.time())
        if gang.failed is not None:
            node, reason = gang.failed
            end = JobExit(gang.job_id, JobState.NODE_FAIL, end.exit_code, end.signal,
                          end.start_ts, end.end_ts, reason=reason, node=node)
        self._stop_parts(gang)
        self._release(gang)  # the GPUs are free now; the exit record stays with the agent
        with self._lock:
            gang.exit = end

    def _release(self, gang: _Gang) -> None:
        """Remove the gang's placement group (its GPUs go back to Ray)."""
        pg, gang.pg = gang.pg, None
        if pg is not None:
            with contextlib.suppress(Exception):
                self._ray.util.remove_placement_group(pg)

    def _fail(self, gang: _Gang, node: str, reason: str) -> None:
        """A node of the gang is lost: stop the job everywhere else, report it later."""
        log.warning("job %s: %s; stopping the gang", gang.job_id, reason)
        gang.failed = (node, reason)
        for rank, agent in enumerate(gang.agents):
            if agent is None or gang.nodes[rank] == node:
                continue
            if rank:
                agent.stop.remote(gang.job_id, gang.run)
            else:
                agent.cancel.remote(gang.job_id, gang.run)

    def _stop_parts(self, gang: _Gang) -> None:
        """Kill what is left of the job on every node still there; wait a little for it."""
        refs = [agent.stop.remote(gang.job_id, gang.run)
                for rank, agent in enumerate(gang.agents)
                if agent is not None and self.nodes.alive(gang.nodes[rank])]
        if refs:
            self._ray.wait(refs, num_returns=len(refs), timeout=CALL_TIMEOUT_S)

    def wait(self, timeout_s: float) -> bool:
        """Block until a gang may have ended, a node changed, or ``timeout_s`` passed; True
        if something happened. Best effort: call :meth:`poll` after every wait."""
        deadline = time.monotonic() + timeout_s
        while not self._closed:
            with self._lock:
                gangs = list(self._gangs.values())
                refs = [g.end_ref for g in gangs if g.exit is None and g.end_ref is not None]
                refs += [r for g in gangs if g.exit is None and g.failed is None
                         for r in g.watch]  # a failing gang's stopped parts are no news
                decided = any(g.exit is not None and g.job_id not in self._reported
                              for g in gangs)
            if decided:
                return True
            self.nodes.refresh()
            if self.nodes.pending_changes():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            step = min(left, 0.25)
            if refs:
                ready, _ = self._ray.wait(refs, num_returns=1, timeout=step)
                if ready:
                    return True
            else:
                time.sleep(step)
        return False

    def acknowledge(self, job_id: int) -> None:
        """The controller stored this gang's end: remove its parts and placement group."""
        with self._lock:
            gang = self._gangs.get(job_id)
            if gang is None or gang.exit is None:
                raise ExecutorError(f"job {job_id} has no exit to acknowledge")
            del self._gangs[job_id]
            self._reported.discard(job_id)
        self._remove(gang)

    def _remove(self, gang: _Gang, *, wait: bool = True) -> None:
        """Close the gang's parts and remove its placement group (``wait``: for the parts'
        clean-up, up to :data:`CALL_TIMEOUT_S`)."""
        if gang.removed:
            return
        gang.removed = True
        refs = [agent.close.remote(gang.job_id, gang.run)
                for rank, agent in enumerate(gang.agents)
                if agent is not None and self.nodes.alive(gang.nodes[rank])]
        if refs and wait:
            self._ray.wait(refs, num_returns=len(refs), timeout=CALL_TIMEOUT_S)
        self._release(gang)

    # -- restarts and nodes --------------------------------------------------------------------

    def reattach(self) -> list[int]:
        """After a controller restart: watch every gang the agents still hold; the ids of
        those whose batch script still runs. A gang with a part gone (its node lost while
        the controller was away) is reported NODE_FAIL by the next :meth:`poll`."""
        from gefion.executor.ray.reattach import find_gangs

        self.nodes.refresh(force=True)
        agents = {node: self._agent(node) for node in self.nodes.names
                  if self.nodes.alive(node)}
        running = []
        for found in find_gangs(self._ray, agents, self.namespace):
            if found.job_id in self._gangs:
                continue
            gang = _Gang(found.job_id, found.run, found.nodes, found.created_ts, pg=found.pg,
                         agents=[agents.get(n) if r in found.ranks else None
                                 for r, n in enumerate(found.nodes)])
            with self._lock:
                self._gangs[gang.job_id] = gang
            lost = next((n for r, n in enumerate(found.nodes) if r not in found.ranks), None)
            if lost is not None:
                self._fail(gang, lost, f"node {lost} lost the job while the controller "
                                       "was away")
                if gang.agents[0] is None:  # the batch script went with its node
                    self._stop_parts(gang)
                    now = time.time()
                    with self._lock:
                        gang.exit = JobExit(gang.job_id, JobState.NODE_FAIL, 1, None,
                                            gang.start_ts, now, reason=gang.failed[1]
                                            if gang.failed else None, node=lost)
                    continue
            self._watch(gang)
            if not found.ended:
                running.append(gang.job_id)
        return sorted(running)

    def node_changes(self) -> list[NodeChange]:
        """Nodes that left Ray's table or came back since the last call (first call: all);
        a node that is back gets its agent."""
        changes = self.nodes.changes()
        if any(change.up for change in changes):
            self._ensure_agents()
        return changes

    @property
    def active(self) -> list[int]:
        """Ids of the jobs this executor watches and has not yet reported."""
        with self._lock:
            return sorted(j for j in self._gangs if j not in self._reported)

    def close(self) -> None:
        """Stop watching. Gangs go on (agents and placement groups are detached); a new
        executor re-attaches to them."""
        self._closed = True
