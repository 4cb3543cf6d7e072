"""The controller's cluster: this host as one node (its GPUs from NVML where there are real
ones, else emulated), or an emulated cluster of a core preset whose nodes all run here.

An emulated cluster (``gefion up --cluster gefion``) is for demos, tests and the portal, as
Slurm's front-end mode: the scheduler places jobs on 191 nodes in six scalable units, and the
local executor runs every job on this host, with the job's node names in
``SLURM_JOB_NODELIST`` and its (emulated) GPU indices in ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

from gefion.core.topology import Cluster, Node, preset

#: GPUs of the emulated DGX-like node on a host without GPUs.
EMULATED_GPUS = 8


def detect_gpus() -> int:
    """GPUs NVML sees on this host (0 without a driver or without nvidia-ml-py)."""
    try:
        import pynvml
    except ImportError:
        return 0
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError: no driver, no device
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()


def local_cluster(name: str, emulate_gpus: int | None) -> tuple[Cluster, bool]:
    """A one-node cluster of this host, and whether its GPUs are emulated."""
    real = detect_gpus() if emulate_gpus is None else 0
    gpus = real if real else (EMULATED_GPUS if emulate_gpus is None else emulate_gpus)
    return Cluster("local", (Node(name, gpus, "su1"),)), not real


def emulated_cluster(name: str) -> tuple[Cluster, bool]:
    """The cluster of preset ``name`` (``gefion``, ``superpod:N``, ``synthetic:NxG``), all of
    whose nodes are emulated on this host; the second value (emulated GPUs) is always True.
    Raises :class:`~gefion.core.errors.TopologyError` for an unknown preset."""
    return preset(name), True
