"""Reader for ``alibaba-openb-2023``: Alibaba GPU-sharing pods (Weng et al., ATC '23).

Pods become jobs, for placement and packing studies. From ``openb_pod_list_default.csv``:

- ``submit`` = ``creation_time`` (seconds from the trace start; ``Trace.origin`` is None);
- ``duration`` = ``deletion_time − scheduled_time``: the pod's life on its GPU. Alibaba's
  own queueing (``scheduled − creation``) is left out: the twin queues for itself;
- ``gpus`` = ``num_gpu``. A pod with ``num_gpu == 1`` and ``gpu_milli < 1000`` shares a GPU;
  Gefion allocates whole GPUs, so by default (``fractional="round_up"``) it takes one whole
  GPU; ``fractional="skip"`` drops those pods instead;
- ``qos`` = the pod's QoS class as written (``LS``, ``BE``, ``Burstable``, ``Guaranteed``);
  no project or user ids exist;
- dropped and counted in ``Trace.dropped``: pods never scheduled (``scheduled_time`` empty,
  the 897 ``Pending`` pods) and, unless ``keep_cpu=True``, pods with 0 GPUs.

``openb_pod_list_multigpu50.csv`` has only the resource columns (no times, whatever its
README says), so it cannot be replayed: asking for it raises :class:`InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gefion.core.errors import InputError
from gefion.twin.traces._common import Columns, Selection, Table, fail, finish
from gefion.twin.traces.model import Trace

NAME = "alibaba-openb-2023"
SUMMARY = ("Alibaba GPU-sharing pods, 2023 (Weng et al., ATC '23; research use), "
           "8,152 pods")
OPTIONS = frozenset({"fractional"})
_FILES = {"default": "openb_pod_list_default.csv",
          "multigpu50": "openb_pod_list_multigpu50.csv"}


@dataclass(frozen=True, slots=True)
class GpuNode:
    """One node of ``openb_node_list_gpu_node.csv``: ``gpus`` GPUs of type ``model``."""

    name: str
    gpus: int
    model: str


def selections(folder: Path) -> tuple[str, ...]:
    """Only ``default`` can be replayed (``multigpu50`` has no times)."""
    return ("default",) if (folder / _FILES["default"]).is_file() else ()


def read(folder: Path, selection: str | None, select: Selection, *,
         fractional: str = "round_up") -> Trace:
    """Load the default pod list (the only one with times)."""
    if fractional not in ("round_up", "skip"):
        raise InputError(f"expected 'round_up' or 'skip', got {fractional!r}",
                         field="fractional")
    key = selection or "default"
    if key not in _FILES:
        raise InputError(f"unknown pod list {key!r} in {NAME}; known: {', '.join(_FILES)}",
                         field="trace")
    table = Table(folder / _FILES[key])
    if "creation_time" not in table.header:
        fail(table.path, 1, "creation_time", "this pod list has no creation, scheduling or "
             "deletion times, so it cannot be replayed; use 'alibaba-openb-2023'")
    table.require(("name", "num_gpu", "gpu_milli", "qos", "creation_time", "deletion_time",
                   "scheduled_time"))
    scheduled = np.array([bool(cell.strip()) for cell in table.raw("scheduled_time")], bool)
    gpus, milli = table.ints("num_gpu"), table.ints("gpu_milli")
    keep = scheduled.copy()
    dropped = {"never scheduled (Pending)": int(np.count_nonzero(~scheduled))}
    if fractional == "skip":
        shared = scheduled & (gpus == 1) & (milli < 1000)
        dropped["fractional GPU (gpu_milli < 1000)"] = int(np.count_nonzero(shared))
        keep &= ~shared
    rows = np.flatnonzero(keep)
    start = table.seconds("scheduled_time", rows=rows)
    end = table.seconds("deletion_time", rows=rows)
    early = rows[end < start]
    if early.size:
        k = int(early[0])
        fail(table.path, table.line_of(k), "deletion_time",
             f"before scheduled_time ({table.raw('deletion_time')[k]} < "
             f"{table.raw('scheduled_time')[k]})")
    names, qos = table.text("name"), table.text("qos")
    cols = Columns(table.seconds("creation_time", rows=rows), [names[k] for k in rows.tolist()],
                   end - start, gpus[rows], qos=[qos[k] for k in rows.tolist()])
    return finish(NAME if key == "default" else f"{NAME}/{key}", SUMMARY, cols, select,
                  keep_cpu=False, dropped=dropped)


def load_gpu_nodes(folder: Path) -> tuple[GpuNode, ...]:
    """The 1,213 GPU nodes (6,212 GPUs, heterogeneous) of the Alibaba cluster."""
    table = Table(folder / "openb_node_list_gpu_node.csv")
    table.require(("sn", "gpu", "model"))
    return tuple(map(GpuNode, table.text("sn"), table.ints("gpu").tolist(),
                     table.text("model")))
