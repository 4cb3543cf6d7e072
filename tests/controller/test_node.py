"""This host as a node: real GPUs through NVML where present, else an emulated DGX node."""

from __future__ import annotations

import sys
import types

import pytest

from gefion.controller.node import EMULATED_GPUS, local_cluster


def fake_nvml(count: int | None) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's ``pynvml`` (the seam): ``None`` fails like a host
    without a driver."""
    module = types.ModuleType("pynvml")

    def init() -> None:
        if count is None:
            raise RuntimeError("NVML Shared Library Not Found")

    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: count  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    return module


def test_real_gpus_found_by_nvml_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(2))
    cluster, emulated = local_cluster("gpu1", None)
    assert (cluster.names, cluster.capacity, emulated) == (("gpu1",), (2,), False)


def test_without_a_driver_one_dgx_like_node_is_emulated(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(None))
    cluster, emulated = local_cluster("cpu1", None)
    assert (cluster.capacity, emulated) == ((EMULATED_GPUS,), True)
    assert EMULATED_GPUS == 8


def test_emulate_gpus_overrides_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(2))
    cluster, emulated = local_cluster("n", 4)
    assert (cluster.capacity, emulated) == ((4,), True)
