"""The telemetry sampler: GPU power and utilization every ``sample_s``, the energy of each
running job integrated over its own GPUs, the machine's power now, and idle-GPU flags.

**Readings.** Every tick, each node's GPUs are read through a
:class:`~gefion.controller.gpureader.GpuReader` (NVML on a host with real GPUs). A GPU the
reader cannot see — every GPU of an emulated node, of a remote Ray node — is *modeled* with
the twin's DGX H100 power model (:mod:`gefion.twin.power`): ``gpu_busy_w`` (550 W) while a
job holds it, ``gpu_idle_w`` (75 W) while free, utilization unknown (None); a modeled node
that is down draws nothing.

**A job's power** is the power of the GPUs it holds — measured or modeled — plus its share
of its nodes' base power (CPUs, memory, NICs, fans, which NVML does not see), pro rata to
the GPUs it holds, at full load as the twin charges it: ``g · base_busy_w · G/8 / G`` on a
node of ``G`` GPUs of which it holds ``g``. A modeled job therefore draws exactly
``g · PowerModel.job_gpu_w(G)`` — the twin's rule. Two jobs sharing a node each get their
own GPUs' energy, never the node's.

**Energy** is integrated per job by the rectangle rule on the sample grid: the power read at
a tick stands for the interval since the previous tick (or since the job started), and the
power of the last tick is held until the job's end, which
:meth:`Sampler.run_ended` closes (subtracting the hold again if the end was before the last
tick). A job that ended before any tick saw it is charged its GPUs' power at its end
(modeled GPUs: busy) over its whole run. The scheduler writes the result, in joules, into
the event that ends the run (``energy_j``), so it is as durable as the end itself.

**Restarts.** The integrals of running jobs are kept in ``DATA_DIR/telemetry.json`` every
``checkpoint_s`` and when the controller stops; a restarted controller takes them up for the
runs still going (same job, same start), and its first tick fills the time it was away with
the power it reads then (the rectangle rule again). A crash loses nothing but that precision.

**Idle GPUs.** A running job whose GPUs' highest utilization stays below ``idle_util_pct``
for ``idle_after_s`` is flagged: :meth:`Sampler.idle_jobs`. Unknown utilization (modeled
GPUs) never flags a job, and resets the count.

Units: seconds, watts, joules, percent. The clock is the controller's (injectable).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gefion.controller.gpureader import GpuReader, GpuSample
from gefion.core.topology import Node, NodeState
from gefion.store.records import Allocation
from gefion.twin.power import DGX_H100, PowerModel

log = logging.getLogger("gefion.telemetry")


@dataclass(frozen=True, slots=True)
class RunningJob:
    """What the sampler needs of a running job: when its run started, which GPUs it holds
    (and, for per-project metrics, its project)."""

    start_ts: float
    allocation: Allocation
    project: str = ""


@dataclass(slots=True)
class _Meter:
    """A running job's integral: ``energy_j`` up to ``last_ts``; ``power_w`` read then."""

    start_ts: float
    energy_j: float = 0.0
    last_ts: float = 0.0
    power_w: float | None = None  # None: no tick has seen the run yet
    util_pct: float | None = None
    idle_since_ts: float | None = None


@dataclass(frozen=True, slots=True)
class JobTelemetry:
    """A running job now: ``power_w`` at the last tick (None: none yet), ``energy_j`` of
    this run so far, its GPUs' highest ``util_pct`` (None: unknown), and whether its GPUs
    are ``idle`` (below the threshold since ``idle_since_ts`` for long enough)."""

    power_w: float | None
    energy_j: float
    util_pct: float | None
    idle_since_ts: float | None
    idle: bool


class Sampler:
    """Samples every ``sample_s`` in a thread (:meth:`start`), or when :meth:`sample` is
    called (tests). ``nodes()`` and ``running()`` are the scheduler's view, read once a tick;
    ``clock()`` is the controller's."""

    def __init__(self, *, nodes: Callable[[], Sequence[Node]],
                 running: Callable[[], Mapping[int, RunningJob]],
                 reader: GpuReader | None, clock: Callable[[], float],
                 model: PowerModel = DGX_H100, sample_s: float = 5.0,
                 idle_util_pct: float = 5.0, idle_after_s: float = 1800.0,
                 checkpoint: Path | None = None, checkpoint_s: float = 60.0) -> None:
        self._nodes, self._running, self.reader, self._clock = nodes, running, reader, clock
        self.model = model
        self.sample_s, self.checkpoint_s = sample_s, checkpoint_s
        self.idle_util_pct, self.idle_after_s = idle_util_pct, idle_after_s
        self._checkpoint = checkpoint
        self._meters: dict[int, _Meter] = {}
        self._gpus: dict[str, dict[int, GpuSample]] = {}  # readings of measured GPUs
        self._node_w: dict[str, float] = {}
        self._idle: dict[int, float] = {}
        # runs closed by run_ended (job → start), which a tick that read the running jobs
        # before the end must not take up again
        self._closed: dict[int, float] = {}
        self.sampled_ts: float | None = None
        self.idle_version = 0  # moves whenever the set of flagged jobs changes
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._load()

    # -- the loop ---------------------------------------------------------------------------
    def start(self) -> None:
        """Sample now, then every ``sample_s`` in a daemon thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="gefion-telemetry",
                                         daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling, keep the running jobs' integrals (checkpoint), let go of NVML."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.save()
        if self.reader is not None:
            self.reader.close()

    def _loop(self) -> None:
        saved = self._clock()
        while not self._stopping.is_set():
            try:
                self.sample()
                if self._clock() - saved >= self.checkpoint_s:
                    saved = self._clock()
                    self.save()
            except Exception:  # a failed tick is a gap in the samples, not a dead sampler
                log.exception("telemetry sample failed")
            self._stopping.wait(self.sample_s)

    # -- one tick ---------------------------------------------------------------------------
    def sample(self, now: float | None = None) -> None:
        """Read every node, integrate each running job's energy up to ``now`` (default: the
        clock) and update the idle flags."""
        now = self._clock() if now is None else now
        nodes = list(self._nodes())
        running = dict(self._running())
        busy: dict[str, set[int]] = {}
        for job in running.values():
            for node, gpus in job.allocation:
                busy.setdefault(node, set()).update(gpus)
        measured = {n.name: self._read(n.name) for n in nodes}
        node_w = {n.name: self._node_power(n, busy.get(n.name, set()), measured[n.name])
                  for n in nodes}
        gpu_count = {n.name: n.gpus for n in nodes}
        with self._lock:
            self._gpus = {name: dict(r) for name, r in measured.items() if r}
            self._node_w = node_w
            for job_id in set(self._meters) - set(running):
                del self._meters[job_id]  # ended without run_ended: a launch that failed
            self._closed = {j: s for j, s in self._closed.items() if j in running}
            for job_id, job in running.items():
                if self._closed.get(job_id) == job.start_ts:
                    continue  # this run ended while the tick was reading
                meter = self._meters.get(job_id)
                if meter is None or meter.start_ts != job.start_ts:
                    meter = self._meters[job_id] = _Meter(job.start_ts, last_ts=job.start_ts)
                power, util = self._job_power(job.allocation, gpu_count)
                meter.energy_j += power * max(0.0, now - meter.last_ts)
                meter.last_ts, meter.power_w, meter.util_pct = max(meter.last_ts, now), \
                    power, util
                idle = util is not None and util < self.idle_util_pct
                meter.idle_since_ts = (meter.idle_since_ts or now) if idle else None
            self.sampled_ts = now
            self._flag(now)

    def _read(self, node: str) -> Mapping[int, GpuSample] | None:
        if self.reader is None:
            return None
        try:
            return self.reader.read(node)
        except Exception:  # a reader that fails this tick: the node is modeled this tick
            log.warning("GPU readings of %s failed", node, exc_info=True)
            return None

    def _base_w(self, node_gpus: int, allocated: int) -> float:
        """Base power (all but the GPUs) of a node of ``node_gpus`` GPUs, ``allocated`` of
        them held: idle base plus the dynamic part pro rata to GPUs held."""
        m = self.model
        scale = node_gpus / m.reference_gpus
        dynamic = (m.base_busy_w - m.base_idle_w) * scale
        return m.base_idle_w * scale + (dynamic * allocated / node_gpus if node_gpus else 0.0)

    def _node_power(self, node: Node, busy: set[int],
                    measured: Mapping[int, GpuSample] | None) -> float:
        if node.state is NodeState.DOWN and not measured:
            return 0.0
        m = self.model
        gpus_w = 0.0
        for gpu in range(node.gpus):
            reading = measured.get(gpu) if measured else None
            gpus_w += reading.power_w if reading is not None else \
                m.gpu_busy_w if gpu in busy else m.gpu_idle_w
        return gpus_w + self._base_w(node.gpus, len(busy))

    def _job_power(self, allocation: Allocation,
                   gpu_count: Mapping[str, int]) -> tuple[float, float | None]:
        """(watts, highest utilization or None) of a job's GPUs, with its base share."""
        m = self.model
        power, utils, known = 0.0, [], True
        for node, gpus in allocation:
            readings = self._gpus.get(node, {})
            for gpu in gpus:
                reading = readings.get(gpu)
                power += m.gpu_busy_w if reading is None else reading.power_w
                if reading is None or reading.util_pct is None:
                    known = False
                else:
                    utils.append(reading.util_pct)
            if gpu_count.get(node, 0) > 0:
                power += len(gpus) * m.base_busy_w / m.reference_gpus
        return power, (max(utils) if known and utils else None)

    def _flag(self, now: float) -> None:
        idle = {job_id: m.idle_since_ts for job_id, m in self._meters.items()
                if m.idle_since_ts is not None and now - m.idle_since_ts >= self.idle_after_s}
        if idle.keys() != self._idle.keys():
            self.idle_version += 1
        self._idle = idle

    # -- the end of a run -------------------------------------------------------------------
    def run_ended(self, job_id: int, end_ts: float, start_ts: float | None,
                  allocation: Allocation) -> dict[str, Any]:
        """Close the integral of the job's run that ended at ``end_ts``; the payload fields
        for the event that ends it: ``{"energy_j": J}`` ({} for a run that never started)."""
        if start_ts is None:
            return {}
        with self._lock:
            meter = self._meters.pop(job_id, None)
            self._closed[job_id] = start_ts
            if self._idle.pop(job_id, None) is not None:
                self.idle_version += 1
            if meter is not None and meter.start_ts == start_ts and meter.power_w is not None:
                energy = meter.energy_j + meter.power_w * (end_ts - meter.last_ts)
            else:  # no tick saw this run: its GPUs' power now over the whole run
                gpu_count = {node: len(gpus) for node, gpus in allocation}
                power, _ = self._job_power(allocation, gpu_count)
                energy = power * (end_ts - start_ts)
        return {"energy_j": round(max(0.0, energy), 3)}

    # -- views ------------------------------------------------------------------------------
    def job(self, job_id: int) -> JobTelemetry | None:
        """The running job's telemetry (None: not running, or no tick has seen it)."""
        with self._lock:
            meter = self._meters.get(job_id)
            if meter is None:
                return None
            return JobTelemetry(meter.power_w, meter.energy_j, meter.util_pct,
                                meter.idle_since_ts, job_id in self._idle)

    def energy_so_far(self) -> dict[int, float]:
        """Joules of each running job's current run, up to the last tick."""
        with self._lock:
            return {job_id: m.energy_j for job_id, m in self._meters.items()}

    def idle_jobs(self) -> dict[int, float]:
        """Flagged jobs → since when their GPUs have been idle."""
        with self._lock:
            return dict(self._idle)

    def node_power(self) -> dict[str, float]:
        """Watts of each node at the last tick ({} before the first)."""
        with self._lock:
            return dict(self._node_w)

    def power_w(self) -> float | None:
        """The machine's watts at the last tick (None before the first)."""
        with self._lock:
            return sum(self._node_w.values()) if self.sampled_ts is not None else None

    def gpu_readings(self) -> dict[str, dict[int, GpuSample]]:
        """The measured GPUs' readings of the last tick, by node (modeled GPUs: none)."""
        with self._lock:
            return {node: dict(r) for node, r in self._gpus.items()}

    # -- checkpoint -------------------------------------------------------------------------
    def save(self) -> None:
        """Write the running jobs' integrals to the checkpoint file (atomically)."""
        if self._checkpoint is None:
            return
        with self._lock:
            body = {"version": 1, "jobs": {str(job_id): asdict(m)
                                           for job_id, m in self._meters.items()}}
        tmp = self._checkpoint.with_name(self._checkpoint.name + ".tmp")
        try:
            tmp.write_text(json.dumps(body))
            os.replace(tmp, self._checkpoint)
        except OSError:
            log.warning("telemetry checkpoint not written", exc_info=True)

    def _load(self) -> None:
        if self._checkpoint is None or not self._checkpoint.exists():
            return
        try:
            body = json.loads(self._checkpoint.read_text())
            self._meters = {int(job_id): _Meter(**m) for job_id, m in body["jobs"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("telemetry checkpoint unreadable; running jobs' energy starts over",
                        exc_info=True)
