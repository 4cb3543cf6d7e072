"""``GET /metrics``: Prometheus's text format, built from the controller's state at each
scrape by a custom collector (prometheus-client), so nothing is counted twice or drifts.

It needs an API token like every ``/v1`` route (Prometheus sends it:
``authorization: {credentials_file: ...}`` in the scrape config), and shows what the token's
principal may see: the machine (nodes, GPUs, power, queue depth, as ``GET /v1/cluster``) to
everyone signed in; per-project usage and energy for every project to operators and
admins, for their own projects to others. A site gives Prometheus a token of a user with
role ``operator`` for everything, or of a user without projects for the machine alone
(docs/telemetry.md).

Counters (``*_total``) never go down while the controller runs: a project's value is the
highest seen (a run's final charge may be a little below what was counted up to the last
scrape while it ran, when its end is stamped before that scrape). They start again from
the log at every controller start, as Prometheus expects of a restarted target.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping

from fastapi import APIRouter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.responses import Response

from gefion.api.auth import Who
from gefion.controller.service import Controller
from gefion.core.topology import NodeState

#: The energy of ended runs is read from the store at most this often (seconds).
ENERGY_REFRESH_S = 10.0
_UNAVAILABLE = (NodeState.DRAINED.value, NodeState.DOWN.value)


class _Monotonic:
    """Per-project values of counters, never lower than already shown (see module)."""

    def __init__(self) -> None:
        self._shown: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, values: Mapping[str, float]) -> dict[str, float]:
        with self._lock:
            shown = self._shown.setdefault(name, {})
            for key, value in values.items():
                shown[key] = max(shown.get(key, 0.0), value)
            return {key: shown[key] for key in values}


class _EndedEnergy:
    """Joules of ended runs per project, from the store, refreshed at most every
    :data:`ENERGY_REFRESH_S` and only when the log has moved."""

    def __init__(self, controller: Controller) -> None:
        self._controller = controller
        self._at: tuple[int, float] = (-1, 0.0)
        self._value: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, float]:
        store = self._controller.store
        if store is None:
            return {}
        with self._lock:
            seq, now = store.last_seq(), time.monotonic()
            if seq != self._at[0] and now - self._at[1] >= ENERGY_REFRESH_S:
                totals: dict[str, float] = {}
                for t in store.usage_totals():
                    totals[t.project] = totals.get(t.project, 0.0) + t.energy_j
                self._value, self._at = totals, (seq, now)
            return dict(self._value)


class GefionCollector(Collector):
    """The metrics of one scrape; ``projects`` None: every project (staff)."""

    def __init__(self, controller: Controller, projects: frozenset[str] | None,
                 monotonic: _Monotonic, ended_energy: _EndedEnergy) -> None:
        self.controller, self.projects = controller, projects
        self._monotonic, self._ended_energy = monotonic, ended_energy

    def _visible(self, values: Mapping[str, float]) -> dict[str, float]:
        return {p: v for p, v in values.items()
                if self.projects is None or p in self.projects}

    def collect(self) -> Iterator[Metric]:
        c = self.controller
        yield from self._machine(c)
        yield from self._usage(c)
        yield from self._telemetry(c)

    def _machine(self, c: Controller) -> Iterator[Metric]:
        nodes = c.nodes()
        by_state = Counter(n.state for n in nodes)
        g = GaugeMetricFamily("gefion_nodes", "Nodes by state", labels=["state"])
        for state in NodeState:
            g.add_metric([state.value], by_state.get(state.value, 0))
        yield g
        allocated = sum(n.gpus_allocated for n in nodes)
        unavailable = sum(n.gpus - n.gpus_allocated for n in nodes if n.state in _UNAVAILABLE)
        g = GaugeMetricFamily("gefion_gpus", "GPUs: allocated to jobs, free on up nodes, "
                              "unavailable on drained or down nodes", labels=["state"])
        g.add_metric(["allocated"], allocated)
        g.add_metric(["free"], sum(n.gpus for n in nodes) - allocated - unavailable)
        g.add_metric(["unavailable"], unavailable)
        yield g
        summary = c.summary()
        g = GaugeMetricFamily("gefion_jobs", "Jobs by state", labels=["state"])
        for state, count in summary["jobs_by_state"].items():
            g.add_metric([state], count)
        yield g
        g = GaugeMetricFamily("gefion_queue_jobs", "Pending jobs by reason (latest cycle)",
                              labels=["reason"])
        for reason, count in summary["queue_by_reason"].items():
            g.add_metric([reason], count)
        yield g
        yield CounterMetricFamily("gefion_scheduler_cycles", "Scheduling cycles run",
                                  value=summary["cycles"])
        if c.store is not None:
            transactions, writes = c.store.write_stats()
            yield CounterMetricFamily("gefion_store_transactions",
                                      "Write transactions committed", value=transactions)
            yield CounterMetricFamily("gefion_store_writes",
                                      "Write calls those transactions carried", value=writes)

    def _usage(self, c: Controller) -> Iterator[Metric]:
        scheduler = c.scheduler
        if scheduler is None:
            return
        charged = scheduler.with_tenancy(lambda t, now: t.accounting.charged_gpu_s(now))
        m = CounterMetricFamily("gefion_project_gpu_seconds", "GPU-seconds charged (× QOS "
                                "usage factor), running jobs up to now", labels=["project"])
        for project, value in sorted(self._monotonic("gpu_s", self._visible(charged)).items()):
            m.add_metric([project], value)
        yield m
        energy = self._ended_energy()
        running = scheduler.running_jobs()
        live = c.sampler.energy_so_far() if c.sampler is not None else {}
        for job_id, joules in live.items():
            job = running.get(job_id)
            if job is not None:
                energy[job.project] = energy.get(job.project, 0.0) + joules
        m = CounterMetricFamily("gefion_energy_joules", "Energy of jobs (measured or "
                                "modeled), running jobs up to the last sample",
                                labels=["project"])
        for project, value in sorted(self._monotonic("energy_j", self._visible(energy))
                                     .items()):
            m.add_metric([project], value)
        yield m

    def _telemetry(self, c: Controller) -> Iterator[Metric]:
        sampler = c.sampler
        if sampler is None:
            return
        g = GaugeMetricFamily("gefion_power_watts", "Power of each node at the last sample "
                              "(measured GPUs plus modeled base, or modeled)", labels=["node"])
        for node, watts in sorted(sampler.node_power().items()):
            g.add_metric([node], watts)
        yield g
        yield GaugeMetricFamily("gefion_jobs_idle_gpus", "Running jobs whose GPUs are idle",
                                value=len(sampler.idle_jobs()))
        readings = sampler.gpu_readings()  # measured GPUs only: modeled ones are no data
        power = GaugeMetricFamily("gefion_gpu_power_watts", "Measured GPU power",
                                  labels=["node", "gpu"])
        util = GaugeMetricFamily("gefion_gpu_utilization_percent", "Measured GPU "
                                 "utilization", labels=["node", "gpu"])
        memory = GaugeMetricFamily("gefion_gpu_memory_used_bytes", "Measured GPU memory in "
                                   "use", labels=["node", "gpu"])
        for node, gpus in sorted(readings.items()):
            for gpu, r in sorted(gpus.items()):
                labels = [node, str(gpu)]
                power.add_metric(labels, r.power_w)
                if r.util_pct is not None:
                    util.add_metric(labels, r.util_pct)
                if r.memory_used_b is not None:
                    memory.add_metric(labels, r.memory_used_b)
        yield from (power, util, memory)


def router(controller: Controller) -> APIRouter:
    api = APIRouter(tags=["metrics"])
    monotonic, ended_energy = _Monotonic(), _EndedEnergy(controller)

    @api.get("/metrics", include_in_schema=False)
    def metrics(who: Who) -> Response:
        """Prometheus text format (see the module for who sees what)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(GefionCollector(
            controller, None if who.is_staff else frozenset(who.projects), monotonic,
            ended_energy))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api
