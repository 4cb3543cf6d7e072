"""What a controller is started with (``gefion up`` options). Units: seconds, GPUs."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from gefion.core.errors import InputError
from gefion.core.topology import PRESET_NAMES, is_preset

#: Where ``gefion up`` keeps its database, job run directories and logs by default.
DEFAULT_DATA_DIR = Path(os.environ.get("GEFION_HOME", "~/.local/share/gefion")).expanduser()
DEFAULT_PORT = 8642
#: The executors a controller can run jobs with.
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ControllerConfig:
    """``db_url`` None: SQLite at ``data_dir/gefion.db``. ``emulate_gpus`` None: NVML's
    count of real GPUs, or 8 emulated ones where there are none. ``refresh_s``: a cycle
    runs at least this often even without events, so ages, ETAs and reasons stay fresh.
    ``cluster``: a core preset (``gefion``, ``superpod:N``, ``synthetic:NxG``) emulated on this
    host instead of this host as one node (see :mod:`gefion.controller.node`).
    ``reports_dir`` None: ``data_dir/reports``, where the portal's twin page finds reports.

    ``executor``: ``local`` (jobs run on this host) or ``ray`` (each node of a Ray cluster is
    a node: the cluster at ``ray_address``, else a one-node Ray head started on 127.0.0.1
    with this host's GPUs). ``topology``: a topology file or preset naming the Ray nodes'
    units (and nodes expected to join); without it, the nodes' labels say.

    ``fairshare_half_life_s``, ``priority_calc_period_s``, ``grant_fallback_qos``: fair
    share and grants (docs/fairshare.md, docs/controller.md).

    ``sample_s``, ``idle_util_pct``, ``idle_after_s``: telemetry (docs/telemetry.md): GPUs
    are sampled every ``sample_s``; a running job whose GPUs stay below ``idle_util_pct`` %
    utilization for ``idle_after_s`` is flagged idle."""

    data_dir: Path = DEFAULT_DATA_DIR
    db_url: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    emulate_gpus: int | None = None
    node_name: str = ""
    policy: str = "gefion"
    kill_grace_s: int = 30
    default_time_limit_s: int = 3_600
    default_project: str = "default"
    refresh_s: float = 30.0
    cluster: str | None = None
    reports_dir: Path | None = None
    executor: str = "local"
    ray_address: str | None = None
    topology: str | None = None
    sample_s: float = 5.0
    idle_util_pct: float = 5.0
    idle_after_s: float = 1_800.0
    #: fair share: usage halves every this many seconds (Slurm's PriorityDecayHalfLife)
    fairshare_half_life_s: float = 7 * 86_400.0
    #: fair-share factors are recomputed at most this often (Slurm's PriorityCalcPeriod)
    priority_calc_period_s: float = 300.0
    #: None: a metered project out of grant hours waits (GRANT_EXHAUSTED); a QOS name
    #: (preemptible, usage factor 0, e.g. ``scavenger``): its jobs run in that QOS instead
    grant_fallback_qos: str | None = None

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise InputError(f"must be one of {', '.join(EXECUTORS)}, got {self.executor!r}",
                             field="executor")
        if self.executor != "ray" and (self.ray_address or self.topology):
            raise InputError("--ray-address and --topology go with --executor ray",
                             field="ray-address" if self.ray_address else "topology")
        if self.executor == "ray" and self.cluster is not None:
            raise InputError("an emulated cluster runs on the local executor; with Ray the "
                             "cluster is Ray's nodes (see --topology)", field="cluster")
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        if not self.node_name:
            object.__setattr__(self, "node_name", socket.gethostname().split(".")[0] or "node1")
        if self.emulate_gpus is not None and not 1 <= self.emulate_gpus <= 64:
            raise InputError(f"must be between 1 and 64, got {self.emulate_gpus}",
                             field="emulate_gpus")
        if not 0 <= self.port <= 65_535:
            raise InputError(f"must be a TCP port (0-65535), got {self.port}", field="port")
        if not self.fairshare_half_life_s > 0:
            raise InputError(f"must be > 0 s, got {self.fairshare_half_life_s}",
                             field="fairshare_half_life_s")
        if not self.priority_calc_period_s >= 0:
            raise InputError(f"must be >= 0 s, got {self.priority_calc_period_s}",
                             field="priority_calc_period_s")
        if self.kill_grace_s < 0:
            raise InputError(f"must be >= 0 s, got {self.kill_grace_s}", field="kill_grace_s")
        if not 0.1 <= self.sample_s <= 3_600:
            raise InputError(f"must be 0.1..3600 s, got {self.sample_s}", field="sample_s")
        if not 0 <= self.idle_util_pct <= 100:
            raise InputError(f"must be a percentage (0-100), got {self.idle_util_pct}",
                             field="idle_util_pct")
        if not self.idle_after_s >= 0:
            raise InputError(f"must be >= 0 s, got {self.idle_after_s}", field="idle_after_s")
        if self.cluster is not None:
            if not is_preset(self.cluster):
                raise InputError(f"unknown cluster preset {self.cluster!r}; expected one of "
                                 f"{', '.join(PRESET_NAMES)}", field="cluster")
            if self.emulate_gpus is not None:
                raise InputError("an emulated cluster's nodes have the preset's GPUs: give "
                                 "cluster or emulate_gpus, not both", field="cluster")
        if self.reports_dir is not None:
            object.__setattr__(self, "reports_dir", Path(self.reports_dir).expanduser().resolve())

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'gefion.db'}"

    @property
    def reports_path(self) -> Path:
        """Where the portal's twin page lists report folders."""
        return self.reports_dir or self.data_dir / "reports"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"
