"""What a controller is started with (``gefion up`` options). Units: seconds, GPUs."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from gefion.core.errors import InputError

#: Where ``gefion up`` keeps its database, job run directories and logs by default.
DEFAULT_DATA_DIR = Path(os.environ.get("GEFION_HOME", "~/.local/share/gefion")).expanduser()
DEFAULT_PORT = 8642


@dataclass(frozen=True)
class ControllerConfig:
    """``db_url`` None: SQLite at ``data_dir/gefion.db``. ``emulate_gpus`` None: NVML's
    count of real GPUs, or 8 emulated ones where there are none. ``refresh_s``: a cycle
    runs at least this often even without events, so ages, ETAs and reasons stay fresh."""

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        if not self.node_name:
            object.__setattr__(self, "node_name", socket.gethostname().split(".")[0] or "node1")
        if self.emulate_gpus is not None and not 1 <= self.emulate_gpus <= 64:
            raise InputError(f"must be between 1 and 64, got {self.emulate_gpus}",
                             field="emulate_gpus")
        if not 0 <= self.port <= 65_535:
            raise InputError(f"must be a TCP port (0-65535), got {self.port}", field="port")
        if self.kill_grace_s < 0:
            raise InputError(f"must be >= 0 s, got {self.kill_grace_s}", field="kill_grace_s")

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'gefion.db'}"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"
