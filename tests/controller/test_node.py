"""This host as a node: real GPUs through NVML where present, else an emulated DGX node;
or a whole preset cluster emulated on this host (``gefion up --cluster``)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from gefion.controller.config import ControllerConfig
from gefion.controller.node import EMULATED_GPUS, emulated_cluster, local_cluster
from gefion.core.errors import InputError
from gefion.core.jobs import JobState
from gefion.formats.hostlist import compress
from tests.api.helpers import running_site


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


# -- an emulated cluster (gefion up --cluster) ---------------------------------------------------

def test_an_emulated_cluster_is_the_core_preset() -> None:
    cluster, emulated = emulated_cluster("gefion")
    assert (len(cluster), cluster.total_gpus, emulated) == (191, 1528, True)
    assert [len(cluster.nodes_in_unit(u)) for u in cluster.units] == [32] * 5 + [31]


@pytest.mark.parametrize(("settings", "field"), [
    ({"cluster": "moon:3"}, "cluster"),
    ({"cluster": "gefion", "emulate_gpus": 4}, "cluster"),
])
def test_a_bad_cluster_option_names_its_field(tmp_path: Path, settings: dict[str, Any],
                                              field: str) -> None:
    with pytest.raises(InputError) as info:
        ControllerConfig(data_dir=tmp_path, **settings)
    assert info.value.field == field


def test_reports_dir_defaults_to_the_data_dir(tmp_path: Path) -> None:
    assert ControllerConfig(data_dir=tmp_path).reports_path == tmp_path.resolve() / "reports"
    other = ControllerConfig(data_dir=tmp_path, reports_dir=tmp_path / "r" / ".." / "x")
    assert other.reports_path == (tmp_path / "x").resolve()


def test_a_multi_node_job_of_an_emulated_cluster_runs_here_with_its_node_names() -> None:
    script = ("#!/bin/bash\n#SBATCH --gpus=16\n#SBATCH --time=5\n"
              "echo \"$SLURM_JOB_NODELIST $SLURM_JOB_NUM_NODES $SLURMD_NODENAME\"\n")
    with running_site(cluster="superpod:1", emulate_gpus=None) as site:
        assert len(site.controller.cluster) == 31
        (job_id,) = site.submit_ok(script)
        row = site.wait(job_id, lambda r: r.state.terminal)
        assert row.state is JobState.COMPLETED, row
        nodes = [node for node, _ in row.allocation]
        assert len(nodes) == 2 and all(len(gpus) == 8 for _, gpus in row.allocation)
        out = site.controller.log_path(job_id).read_text().split()
        assert out == [compress(nodes), "2", nodes[0]]
