"""The scheduler's view of a trace job: its :class:`~gefion.core.jobs.JobSpec` and shape.

The spec carries the trace's GPUs and time limit, never its true runtime (see docs/twin.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from gefion.core.errors import InputError, SpecError
from gefion.core.jobs import JobSpec, Shape
from gefion.core.tenancy import QOS
from gefion.core.topology import Cluster
from gefion.twin.traces.model import TraceJob

#: The project of trace jobs that name none (run the workload model to assign projects).
UNASSIGNED_PROJECT = "unassigned"

def job_spec(job: TraceJob, cluster: Cluster, qos: Mapping[str, QOS], *,
             node_gpus: int | None = None) -> tuple[JobSpec, Shape | None, str, bool]:
    """The scheduler's view of a trace job: ``(spec, shape, why_not, rounded_up)``.

    The spec has the trace's GPUs and time limit (never its runtime), its project (``""`` →
    :data:`UNASSIGNED_PROJECT`), user and QOS (``""`` or a name not in ``qos`` → ``normal``).
    A request larger than a node that does not split evenly over ``ceil(gpus / node)``
    nodes (20 GPUs on 8-GPU nodes) is rounded up to whole nodes (24). ``shape`` is None, with
    ``why_not``, when the job can never run on ``cluster``. ``node_gpus`` is the cluster's
    node size (``cluster.max_gpus_per_node``, which costs a pass over the nodes).
    """
    if job.time_limit_s is None:
        raise InputError(f"job {job.job_id} has no time limit; apply the workload model "
                         "(gefion.twin.workload.apply_workload_model) first",
                         field="time_limit_s")
    if node_gpus is None:
        node_gpus = cluster.max_gpus_per_node
    name = job.qos if job.qos in qos else "normal"
    spec = JobSpec(job.gpus, int(job.time_limit_s), job.project or UNASSIGNED_PROJECT,
                   job.user, qos=name)
    shape, why = _shape(spec, node_gpus, len(cluster.nodes))
    if shape is None and node_gpus > 0 and spec.gpus > node_gpus:
        rounded = replace(spec, gpus=-(-spec.gpus // node_gpus) * node_gpus)
        shape, why = _shape(rounded, node_gpus, len(cluster.nodes))
        if shape is not None:
            return rounded, shape, "", True
    return spec, shape, why, False


def _shape(spec: JobSpec, node_gpus: int, nodes: int) -> tuple[Shape | None, str]:
    """As :func:`gefion.core.snapshot.resolve_shape`, with the node size given."""
    try:
        shape = spec.shape(node_gpus)
    except SpecError as e:
        return None, str(e)
    if shape.nodes > nodes:
        return None, f"needs {shape.nodes} nodes, the cluster has {nodes}"
    return shape, ""


def drop_reason(why: str) -> str:
    """How the engine counts a job that can never run, from ``why_not``."""
    if "nodes, the cluster has" in why:
        return "larger than the cluster"
    return "cannot be laid out on this cluster"
