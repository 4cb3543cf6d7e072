"""The twin's power model of DGX H100 nodes: idle and busy watts per GPU plus node base power.

A node of ``G`` GPUs, ``a`` of them allocated, draws (watts)::

    P_node(a) = base_idle_w + (base_busy_w - base_idle_w) · a / G      # CPUs, memory, NICs, fans
              + a · gpu_busy_w + (G - a) · gpu_idle_w                   # the GPUs

so the cluster's power is linear in the allocated GPUs of each node; a node that is down
(failed) draws nothing. A job's energy is its GPUs' busy power plus its pro-rata share of
the node base at full load, over the time it runs (joules)::

    E_job = Σ_nodes g · (gpu_busy_w + base_busy_w / G) · runtime_s

The base that idle GPUs keep (``base_idle_w`` per node, ``gpu_idle_w`` per free GPU) is the
facility's idle overhead and is charged to no job; it is in the cluster's energy.

Sources and assumptions (DGX H100, 8 × H100 SXM5 80 GB):

* **10.2 kW** maximum system power — NVIDIA DGX H100 datasheet ("System power usage
  ~10.2 kW max"); the DGX H100/H200 user guide gives six 3.3 kW supplies in a 4+2
  redundant configuration, i.e. that same 10.2 kW input ceiling.
* **700 W** per GPU at most — NVIDIA H100 Tensor Core GPU datasheet ("Max thermal design
  power (TDP): up to 700 W" for SXM).
* hence the node base at full load: 10.2 kW − 8 × 700 W = **4.6 kW** (CPUs, 2 TB memory,
  NICs, NVSwitches, fans, supply losses) — derived from the two figures above.
* **Assumptions** (not datasheet figures): a busy GPU averages **550 W** over a training
  job (jobs rarely hold TDP: data loading, communication and checkpoints pull the average
  well below 700 W); an idle GPU draws **75 W** (within the 60–100 W ``nvidia-smi``
  reports for an idle H100 SXM); an idle node's base is **1.8 kW** (fans and CPUs at low
  load). A fully busy node then draws 8 × 550 + 4,600 = 9.0 kW, an idle one
  1,800 + 8 × 75 = 2.4 kW.
"""

from __future__ import annotations

from dataclasses import dataclass

from gefion.core.errors import InputError

#: Maximum system power of one DGX H100, watts (NVIDIA DGX H100 datasheet).
DGX_H100_MAX_W = 10_200.0
#: Maximum TDP of one H100 SXM5, watts (NVIDIA H100 datasheet).
H100_SXM_TDP_W = 700.0


@dataclass(frozen=True, slots=True)
class PowerModel:
    """Watts per GPU (busy, idle) and per node (base at idle, base at full load).

    ``base_*_w`` are for a node of ``reference_gpus`` GPUs; a node with a different GPU
    count scales them by ``gpus / reference_gpus``.
    """

    gpu_busy_w: float = 550.0
    gpu_idle_w: float = 75.0
    base_idle_w: float = 1_800.0
    base_busy_w: float = DGX_H100_MAX_W - 8 * H100_SXM_TDP_W  # 4,600 W
    reference_gpus: int = 8

    def __post_init__(self) -> None:
        for name in ("gpu_busy_w", "gpu_idle_w", "base_idle_w", "base_busy_w"):
            value = getattr(self, name)
            if not value >= 0:
                raise InputError(f"must be >= 0 watts, got {value}", field=name)
        if self.base_busy_w < self.base_idle_w or self.gpu_busy_w < self.gpu_idle_w:
            raise InputError("busy power must be at least idle power", field="power")
        if self.reference_gpus < 1:
            raise InputError(f"must be >= 1, got {self.reference_gpus}", field="reference_gpus")

    def _scale(self, node_gpus: int) -> float:
        return node_gpus / self.reference_gpus

    def node_idle_w(self, node_gpus: int) -> float:
        """Watts of an up node of ``node_gpus`` GPUs with nothing allocated."""
        return self.base_idle_w * self._scale(node_gpus) + node_gpus * self.gpu_idle_w

    def node_w(self, node_gpus: int, allocated: int) -> float:
        """Watts of an up node of ``node_gpus`` GPUs with ``allocated`` of them busy."""
        return self.node_idle_w(node_gpus) + allocated * self.alloc_delta_w(node_gpus)

    def alloc_delta_w(self, node_gpus: int) -> float:
        """Extra watts when one more GPU of a ``node_gpus``-GPU node is allocated."""
        if node_gpus <= 0:
            return 0.0
        dynamic_base = (self.base_busy_w - self.base_idle_w) * self._scale(node_gpus)
        return self.gpu_busy_w - self.gpu_idle_w + dynamic_base / node_gpus

    def job_gpu_w(self, node_gpus: int) -> float:
        """Watts charged to a job per GPU it holds on a ``node_gpus``-GPU node: the GPU busy
        plus its share of the node base at full load."""
        if node_gpus <= 0:
            return 0.0
        return self.gpu_busy_w + self.base_busy_w * self._scale(node_gpus) / node_gpus


#: The default model (see the module docstring for sources and assumptions).
DGX_H100 = PowerModel()


class PowerMeter:
    """The power draw of a cluster as nodes go up and down and GPUs are allocated.

    Kept as counts per node size (nodes powered, GPUs allocated), so the draw is computed
    exactly from integers, never a running sum of floats that drifts.
    """

    def __init__(self, model: PowerModel, node_gpus: list[int], powered: list[bool]) -> None:
        sizes = sorted(set(node_gpus))
        self._idle_w = {c: model.node_idle_w(c) for c in sizes}
        self._delta_w = {c: model.alloc_delta_w(c) for c in sizes}
        self.powered: dict[int, int] = dict.fromkeys(sizes, 0)
        self.allocated: dict[int, int] = dict.fromkeys(sizes, 0)
        for c, on in zip(node_gpus, powered, strict=True):
            self.powered[c] += on
        self._watts: float | None = None  # the draw, until the counts change

    def allocate(self, node_gpus: int, gpus: int) -> None:
        """``gpus`` more (negative: fewer) GPUs allocated on nodes of ``node_gpus``."""
        self.allocated[node_gpus] += gpus
        self._watts = None

    def power(self, node_gpus: int, nodes: int) -> None:
        """``nodes`` more (negative: fewer) nodes of ``node_gpus`` GPUs powered."""
        self.powered[node_gpus] += nodes
        self._watts = None

    @property
    def watts(self) -> float:
        """The cluster's draw now, watts."""
        watts = self._watts
        if watts is None:  # sum() of each part, as loops: this runs after every change
            idle = busy = 0.0
            for c, k in self.powered.items():
                idle += k * self._idle_w[c]
            for c, k in self.allocated.items():
                busy += k * self._delta_w[c]
            watts = self._watts = idle + busy
        return watts
