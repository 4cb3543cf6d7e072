"""``fifo-backfill``: Slurm-like — submission order with EASY backfill (depth 1).

The first job that cannot start gets a planned start; later jobs start early only if they
do not delay it. The same policy as ``fifo`` but for backfill.
"""

from __future__ import annotations

from dataclasses import dataclass

from gefion.core.policies.fifo import Fifo


@dataclass(frozen=True)
class FifoBackfill(Fifo):
    name: str = "fifo-backfill"
    backfill: bool = True
