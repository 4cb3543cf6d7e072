"""Readings of GPUs, the telemetry sampler's seam: NVML where there are real GPUs, a fake
for tests (and for anyone who wants to drive utilization by hand).

A reader answers for the nodes it can see — NVML for this host's GPUs only — and None for
the others, whose GPUs the sampler then models (:mod:`gefion.controller.telemetry`).

Units: watts, percent, bytes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("gefion.telemetry")


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One GPU at one instant: power draw (W), utilization (% of time a kernel ran over
    the driver's last sample period; None: unknown) and memory in use (bytes; None:
    unknown)."""

    power_w: float
    util_pct: float | None = None
    memory_used_b: int | None = None


class GpuReader(Protocol):
    """Reads the GPUs of the nodes it can see."""

    def read(self, node: str) -> Mapping[int, GpuSample] | None:
        """GPU index → reading for ``node``'s GPUs; None when this reader cannot see the
        node (its GPUs are modeled). A GPU missing from the answer is modeled too."""
        ...

    def close(self) -> None: ...


class NvmlReader:
    """This host's GPUs through NVML (nvidia-ml-py), as the node ``node``."""

    def __init__(self, node: str) -> None:
        import pynvml

        self.node = node
        self._nvml: Any = pynvml
        pynvml.nvmlInit()
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i)
                         for i in range(pynvml.nvmlDeviceGetCount())]
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def open(cls, node: str) -> NvmlReader | None:
        """A reader, or None where NVML cannot be used (no driver, no package)."""
        try:
            return cls(node)
        except Exception as exc:  # ImportError, NVMLError: no real GPUs to read
            log.info("no NVML telemetry: %s", exc)
            return None

    def read(self, node: str) -> Mapping[int, GpuSample] | None:
        if node != self.node:
            return None
        out: dict[int, GpuSample] = {}
        nvml = self._nvml
        with self._lock:
            if self._closed:
                return None
            for index, handle in enumerate(self._handles):
                try:
                    power_w = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0  # milliwatts
                except Exception:  # a GPU that cannot say: modeled
                    continue
                util: float | None
                memory: int | None
                try:
                    util = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                except Exception:
                    util = None
                try:
                    memory = int(nvml.nvmlDeviceGetMemoryInfo(handle).used)
                except Exception:
                    memory = None
                out[index] = GpuSample(power_w, util, memory)
        return out

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    self._nvml.nvmlShutdown()
                except Exception:  # shutting down regardless
                    log.debug("nvmlShutdown failed", exc_info=True)


class FakeGpuReader:
    """Readings set by hand: ``reader.set("node1", 0, GpuSample(300.0, util_pct=2.0))``.
    Nodes never set are not seen (modeled); thread-safe."""

    def __init__(self) -> None:
        self._nodes: dict[str, dict[int, GpuSample]] = {}
        self._lock = threading.Lock()

    def set(self, node: str, gpu: int, sample: GpuSample) -> None:
        with self._lock:
            self._nodes.setdefault(node, {})[gpu] = sample

    def set_node(self, node: str, samples: Mapping[int, GpuSample]) -> None:
        with self._lock:
            self._nodes[node] = dict(samples)

    def read(self, node: str) -> Mapping[int, GpuSample] | None:
        with self._lock:
            samples = self._nodes.get(node)
            return None if samples is None else dict(samples)

    def close(self) -> None:
        pass
