"""This host as a Gefion node: its GPUs from NVML where there are real ones, else emulated."""

from __future__ import annotations

from gefion.core.topology import Cluster, Node

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
