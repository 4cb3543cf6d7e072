"""The site a submission is checked against, and what becomes of each option here.

The rule: **a directive that has no effect here is accepted with a visible warning; one that
cannot be honoured is refused with file, line and a reason — never silently dropped.**

=============================  ========  =====================================================
option                         decision  why / check
=============================  ========  =====================================================
-J -A -o -e -D --comment       accept    plain values (-A is the Gefion project)
-t --time                      accept    UNLIMITED/0 → None: the caller applies the QOS max
-p --partition                 refuse    if a name is not one of ``Site.partitions``
-q --qos                       refuse    if not one of ``Site.qos``
-N --nodes                     accept    ``min-max``: ``min`` is used, with a warning
-G --gpus, --gpus-per-node,    refuse    a GPU type not in ``Site.gpu_types``; more GPUs per
--gpus-per-task, --gres=gpu              node than ``Site.node_gpus``; a layout that cannot
                                         split evenly over whole nodes; gres other than gpu
-n -c --ntasks-per-node        refuse    ``ntasks-per-node × cpus-per-task > Site.node_cpus``
--mem, --mem-per-gpu           refuse    more than ``Site.node_mem_mb`` on one node; both
                                         given (Slurm: mutually exclusive)
-C --constraint                refuse    a feature not in ``Site.features``
-x --exclude                   refuse    a node not in ``Site.node_names`` (when known)
-a --array                     refuse    an index >= ``Site.max_array_size``
-d --dependency                accept    ``?`` (any-of) is read as all-of, ``+time`` delays
                                         are dropped: each with a warning
--signal                       accept    ``R:`` (reservation end) has no effect: warning
--exclusive                    accept    ``=user|mcs|topo``: refused
--begin                        refuse    unless ``now``: deferred starts are not supported
--reservation --export         accept    passed on to the controller and executor
--requeue --no-requeue         accept
--open-mode                    accept
-H --hold, --test-only,        accept    for the CLI to act on
--parsable, -W --wait, --wrap
--mail-type, --mail-user       warn      no mail service, one warning for the pair (values
                                         still checked; none for ``--mail-type=NONE``)
--hint, --gpu-bind             warn      no effect under the local executor (values checked)
-v --verbose, -Q --quiet       warn      no effect: there is no sbatch logging to tune
anything else                  refuse    not an sbatch option, or one Gefion does not take
=============================  ========  =====================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gefion.core.errors import SpecError
from gefion.core.jobs import JobSpec, Shape
from gefion.slurm.arrays import DEFAULT_MAX_ARRAY_SIZE
from gefion.slurm.errors import Diagnostic
from gefion.slurm.gpus import GpuRequest, spec_gpus_per_node, total_gpus
from gefion.slurm.options import Settings
from gefion.slurm.values import NodeRange, SignalSpec, format_mem


@dataclass(frozen=True, slots=True)
class Site:
    """What this cluster has. Defaults: DGX H100 nodes (8 GPUs, 112 cores, 2 TiB).

    ``partitions[0]`` is the default partition. ``node_names`` None: unknown, not checked.
    Memory in MB (MiB, as Slurm counts).
    """

    gpu_types: tuple[str, ...] = ("h100",)
    partitions: tuple[str, ...] = ("gpu",)
    features: tuple[str, ...] = ("h100", "dgx")
    node_gpus: int = 8
    node_mem_mb: int = 2_097_152
    node_cpus: int = 112
    max_array_size: int = DEFAULT_MAX_ARRAY_SIZE
    qos: tuple[str, ...] = ("normal", "high", "scavenger")
    node_names: tuple[str, ...] | None = None

    @property
    def default_partition(self) -> str:
        return self.partitions[0]


_GPU_OPTIONS = ("gpus", "gpus-per-node", "gres", "gpus-per-task")


def gpus_per_node(s: Settings) -> int | None:
    """GPUs per node from ``--gpus-per-node`` or ``--gres=gpu`` (the same thing)."""
    for key in ("gpus-per-node", "gres"):
        request = s.get(key, GpuRequest)
        if request is not None:
            return request.count
    return None


def gpu_types(s: Settings) -> list[tuple[str, str]]:
    """(option, GPU type) for each type a GPU option names, in option order."""
    out: list[tuple[str, str]] = []
    for key in _GPU_OPTIONS:
        request = s.get(key, GpuRequest)
        out.extend((key, t) for t in (request.types if request is not None else ()))
    return out


def gpu_shape(s: Settings, site: Site) -> Shape:
    """The job's layout on the site's nodes; refuses one that cannot be laid out, blaming
    the first GPU option given (or ``--nodes``)."""
    nodes = s.get("nodes", NodeRange)
    n = nodes.min if nodes is not None else None
    gpus, per_task = s.get("gpus", GpuRequest), s.get("gpus-per-task", GpuRequest)
    ntasks, ntpn = s.get("ntasks", int), s.get("ntasks-per-node", int)
    gpn = spec_gpus_per_node(gpus_per_node=gpus_per_node(s),
                             gpus_per_task=per_task.count if per_task else None,
                             ntasks=ntasks, ntasks_per_node=ntpn)
    total = total_gpus(gpus=gpus.count if gpus else None, nodes=n, gpus_per_node=gpn,
                       gpus_per_task=per_task.count if per_task else None,
                       ntasks=ntasks, ntasks_per_node=ntpn)
    given = [k for k in (*_GPU_OPTIONS, "nodes") if k in s]
    if gpn is not None and gpn > site.node_gpus:
        key = next(k for k in ("gpus-per-node", "gres", "gpus-per-task") if k in s)
        times = f"× --ntasks-per-node={ntpn} " if key == "gpus-per-task" else ""
        raise s.origin(key).refusal(f"{times}asks {gpn} GPUs per node; a node has "
                                    f"{site.node_gpus}")
    try:
        spec = JobSpec(gpus=total, time_limit_s=1, project="-", nodes=n, gpus_per_node=gpn,
                       exclusive=bool(s.get("exclusive", bool)))
        return spec.shape(site.node_gpus)
    except SpecError as e:
        # Only a GPU or node option can make a layout impossible, so one of them was given.
        raise s.origin(given[0]).refusal(
            f"does not fit nodes of {site.node_gpus} GPUs: {e.message}") from None


def review(s: Settings, site: Site) -> tuple[Diagnostic, ...]:
    """Check the final settings against ``site``: raise for what cannot be honoured, and
    return a warning for each accepted option that has no effect (the table above)."""
    warnings: list[Diagnostic] = []
    _check_names(s, site)
    for key, gpu_type in gpu_types(s):
        if gpu_type not in site.gpu_types:
            raise s.origin(key).refusal(f"names GPU type {gpu_type!r}; this site has "
                                        f"{', '.join(site.gpu_types)}")
    gres, gpn = s.get("gres", GpuRequest), s.get("gpus-per-node", GpuRequest)
    if gres is not None and gpn is not None and gres.count != gpn.count:
        raise s.origin("gres").error("--gres=gpu and --gpus-per-node both set GPUs per "
                                     "node, and disagree")
    shape = gpu_shape(s, site)
    per_task = s.get("gpus-per-task", GpuRequest)
    ntpn = s.get("ntasks-per-node", int)
    if per_task is not None and ntpn is not None and per_task.count * ntpn > site.node_gpus:
        raise s.origin("gpus-per-task").refusal(
            f"× --ntasks-per-node={ntpn} exceeds a node's {site.node_gpus} GPUs")
    cpt = s.get("cpus-per-task", int)
    if cpt is not None and cpt > site.node_cpus:
        raise s.origin("cpus-per-task").refusal(f"exceeds a node's {site.node_cpus} CPUs")
    if ntpn is not None and ntpn * (cpt or 1) > site.node_cpus:
        raise s.origin("ntasks-per-node").refusal(
            f"× --cpus-per-task={cpt or 1} exceeds a node's {site.node_cpus} CPUs")
    memory_warning = _check_memory(s, site, shape)
    if memory_warning is not None:
        warnings.append(memory_warning)
    nodes = s.get("nodes", NodeRange)
    if nodes is not None and nodes.max is not None and nodes.max != nodes.min:
        warnings.append(s.origin("nodes").warning(
            f"Gefion allocates a fixed node count: {nodes.min} nodes, never up to {nodes.max}"))
    if nodes is not None and site.node_names is not None and nodes.min > len(site.node_names):
        raise s.origin("nodes").refusal(f"asks more nodes than the {len(site.node_names)} "
                                        "this site has")
    signal = s.get("signal", SignalSpec)
    if signal is not None and signal.at_reservation_end:
        warnings.append(s.origin("signal").warning(
            "R: has no effect here; the signal is sent before the time limit"))
    if "dependency" in s:
        text = s.origin("dependency").value or ""
        if "?" in text:
            warnings.append(s.origin("dependency").warning(
                "'?' (any one of) is read as ',' (all of): the job waits for every one"))
        if "+" in text:
            warnings.append(s.origin("dependency").warning(
                "'+time' delays have no effect here and are dropped"))
    if s.get("mail-type", tuple) == ("NONE",):
        pass  # asks for no mail, and gets none
    elif "mail-type" in s or "mail-user" in s:
        key = "mail-type" if "mail-type" in s else "mail-user"
        warnings.append(s.origin(key).warning("no mail is sent: this site has no mail service"))
    for key, why in (("hint", "no effect under the local executor"),
                     ("gpu-bind", "no effect under the local executor"),
                     ("verbose", "no effect: gefion submit has no sbatch logging"),
                     ("quiet", "no effect: gefion submit has no sbatch logging")):
        if key in s:
            warnings.append(s.origin(key).warning(why))
    return tuple(warnings)


def _check_names(s: Settings, site: Site) -> None:
    for name in (s.get("partition", str) or "").split(","):
        if name and name not in site.partitions:
            raise s.origin("partition").refusal(f"names no partition here; partitions are "
                                                f"{', '.join(site.partitions)}")
    qos = s.get("qos", str)
    if qos is not None and qos not in site.qos:
        raise s.origin("qos").refusal(f"names no QOS here; QOS are {', '.join(site.qos)}")
    constraint = s.get("constraint", str)
    for feature in re.split(r"[&|,()\[\]!]+|\*[0-9]*", constraint or ""):
        if feature and feature not in site.features:
            raise s.origin("constraint").refusal(f"names feature {feature!r}, which no node "
                                                 f"has; features are {', '.join(site.features)}")
    exclude = s.get("exclude", tuple)
    if exclude and site.node_names is not None:
        unknown = [n for n in exclude if n not in set(site.node_names)]
        if unknown:
            raise s.origin("exclude").refusal(f"names unknown nodes {', '.join(unknown)}")


def _check_memory(s: Settings, site: Site, shape: Shape) -> Diagnostic | None:
    limit = format_mem(site.node_mem_mb)
    mem = s.get("mem", int)
    if mem is not None and mem > site.node_mem_mb:
        raise s.origin("mem").refusal(f"exceeds a node's {limit}")
    per_gpu = s.get("mem-per-gpu", int)
    if per_gpu is None:
        return None
    if mem is not None:
        raise s.origin("mem-per-gpu").error("--mem and --mem-per-gpu are mutually exclusive")
    if shape.gpus_per_node == 0:
        return s.origin("mem-per-gpu").warning("no effect: the job asks for no GPUs")
    if per_gpu * shape.gpus_per_node > site.node_mem_mb:
        raise s.origin("mem-per-gpu").refusal(
            f"× {shape.gpus_per_node} GPUs per node exceeds a node's {limit}")
    return None
