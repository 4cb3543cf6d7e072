"""GPU requests: ``--gpus``, ``--gpus-per-node``, ``--gpus-per-task`` and ``--gres=gpu``.

Forms::

    --gpus=[type:]N[,[type:]N...]           (also -G; the same for the per-node/per-task ones)
    --gres=[gres/]gpu[:type][:N][,...]       (N defaults to 1; ``--gres=none`` asks nothing)

Counts of a list are added up (``h100:2,h100:2`` is 4). ``--gres=gpu:N`` is a per-node
count, the same as ``--gpus-per-node=N``; a generic resource other than ``gpu`` does not
exist on a Gefion site and is refused.

:func:`total_gpus` is the one place that turns the options into a job's total:
``--gpus``, else nodes × GPUs per node, else tasks × GPUs per task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gefion.slurm.errors import BadValue

_TYPED = re.compile(r"(?:(?P<type>[A-Za-z][\w.-]*):)?(?P<count>[0-9]+)")


@dataclass(frozen=True, slots=True)
class GpuRequest:
    """``count`` GPUs, of the named ``types`` (empty: any type)."""

    count: int
    types: tuple[str, ...] = ()


def parse_gpus(text: str) -> GpuRequest:
    """``[type:]N[,...]`` as ``--gpus``, ``--gpus-per-node`` and ``--gpus-per-task`` take."""
    count = 0
    types: list[str] = []
    for item in text.split(","):
        m = _TYPED.fullmatch(item.strip())
        if m is None:
            raise BadValue(f"invalid GPU count {item.strip()!r}: expected N or TYPE:N")
        count += int(m["count"])
        if m["type"]:
            types.append(m["type"].lower())
    return GpuRequest(count, tuple(dict.fromkeys(types)))


def parse_gres(text: str) -> GpuRequest | None:
    """GPUs per node that a ``--gres`` list asks for; None for ``none``."""
    if text.lower() == "none":
        return None
    count = 0
    types: list[str] = []
    for item in text.split(","):
        fields = item.strip().removeprefix("gres/").split(":")
        name = fields[0]
        if name.lower() != "gpu":
            raise BadValue(f"cannot be honoured: --gres={text}: there is no generic resource "
                           f"{name!r} here, only gpu")
        rest = fields[1:]
        n = 1
        if rest and rest[-1].isdecimal() and rest[-1].isascii():
            n = int(rest.pop())
        if len(rest) > 1 or (rest and not re.fullmatch(r"[A-Za-z][\w.-]*", rest[0])):
            raise BadValue(f"invalid --gres item {item.strip()!r}: expected gpu[:type][:N]")
        count += n
        types.extend(t.lower() for t in rest)
    return GpuRequest(count, tuple(dict.fromkeys(types)))


def total_gpus(*, gpus: int | None, nodes: int | None, gpus_per_node: int | None,
               gpus_per_task: int | None, ntasks: int | None,
               ntasks_per_node: int | None) -> int:
    """The job's total GPUs from its options (see the module docstring); 0 if none.

    Tasks default as Slurm's do: ``--ntasks``, else nodes × ``--ntasks-per-node``, else one
    task per node.
    """
    if gpus is not None:
        return gpus
    if gpus_per_node is not None:
        return gpus_per_node * (nodes or 1)
    if gpus_per_task is not None:
        if ntasks is not None:
            tasks = ntasks
        elif ntasks_per_node is not None:
            tasks = ntasks_per_node * (nodes or 1)
        else:
            tasks = nodes or 1
        return gpus_per_task * tasks
    return 0


def spec_gpus_per_node(*, gpus_per_node: int | None, gpus_per_task: int | None,
                       ntasks: int | None, ntasks_per_node: int | None) -> int | None:
    """GPUs per node to put in a :class:`~gefion.core.jobs.JobSpec`: the explicit count, or
    GPUs per task × tasks per node when tasks are given per node only; else None (the core
    lays the total out)."""
    if gpus_per_node is not None:
        return gpus_per_node
    if gpus_per_task is not None and ntasks_per_node is not None and ntasks is None:
        return gpus_per_task * ntasks_per_node
    return None
