"""The result of parsing a batch submission: what was asked, and what to tell the user.

:class:`Submission` is immutable and complete: defaults Slurm would apply are filled in
(job name, partition, output and error patterns), so that the CLI shows what will happen.
Units: ``time_limit_s`` in seconds, ``mem_mb`` and ``mem_per_gpu_mb`` in MB (MiB).
"""

from __future__ import annotations

from dataclasses import dataclass

from gefion.core.errors import SpecError
from gefion.core.jobs import Dependency, JobSpec
from gefion.slurm.arrays import ArraySpec
from gefion.slurm.errors import Diagnostic, SbatchError
from gefion.slurm.gpus import spec_gpus_per_node, total_gpus
from gefion.slurm.timefmt import format_time_limit
from gefion.slurm.values import ExportSpec, SignalSpec


@dataclass(frozen=True, slots=True)
class Submission:
    """A parsed ``gefion submit``: the script, its options after overrides, and warnings.

    ``gpus`` is ``--gpus`` as given; ``gpus_per_node`` comes from ``--gpus-per-node`` or
    ``--gres=gpu``; :attr:`total_gpus` resolves them. None means "not given". ``time_limit_s``
    None means no limit was asked (or UNLIMITED): the caller applies its default or maximum.
    ``requeue`` None leaves the choice to the QOS. ``hold`` asks the caller to submit the
    job held; ``test_only``, ``parsable`` and ``wait`` are for the CLI.
    """

    script: str
    source: str
    name: str
    partition: str
    output: str
    error: str
    nodes: int | None = None
    gpus: int | None = None
    gpus_per_node: int | None = None
    gpus_per_task: int | None = None
    gpu_type: str | None = None
    ntasks: int | None = None
    ntasks_per_node: int | None = None
    cpus_per_task: int | None = None
    time_limit_s: int | None = None
    project: str | None = None
    qos: str | None = None
    array: ArraySpec | None = None
    dependencies: tuple[Dependency, ...] = ()
    chdir: str | None = None
    signal: SignalSpec | None = None
    exclusive: bool = False
    reservation: str | None = None
    export: ExportSpec | None = None
    requeue: bool | None = None
    mem_mb: int | None = None
    mem_per_gpu_mb: int | None = None
    constraint: str | None = None
    exclude: tuple[str, ...] = ()
    open_mode: str | None = None
    mail_type: tuple[str, ...] = ()
    mail_user: str | None = None
    gpu_bind: str | None = None
    hint: str | None = None
    comment: str | None = None
    hold: bool = False
    test_only: bool = False
    parsable: bool = False
    wait: bool = False
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def total_gpus(self) -> int:
        """``--gpus``, else nodes × GPUs per node, else tasks × GPUs per task; else 0."""
        return total_gpus(gpus=self.gpus, nodes=self.nodes, gpus_per_node=self.gpus_per_node,
                          gpus_per_task=self.gpus_per_task, ntasks=self.ntasks,
                          ntasks_per_node=self.ntasks_per_node)

    def to_job_spec(self, *, user: str, default_project: str, default_time_limit_s: int,
                    node_gpus: int = 8, array_index: int | None = None) -> JobSpec:
        """The core's job request for this submission (for an array, for one task of it).

        ``default_project`` stands in for a missing ``--account``; ``default_time_limit_s``
        for a missing or unlimited ``--time``. Raises :class:`~gefion.core.errors.SpecError`
        (located at the script) if the request cannot be laid out on nodes of ``node_gpus``
        GPUs, and :class:`SbatchError` for an ``array_index`` the array does not have.
        """
        if array_index is not None and (self.array is None
                                        or array_index not in self.array.indices):
            raise SbatchError(f"array index {array_index} is not in --array={self.array}",
                              field="--array", source=self.source)
        gpn = spec_gpus_per_node(gpus_per_node=self.gpus_per_node,
                                 gpus_per_task=self.gpus_per_task, ntasks=self.ntasks,
                                 ntasks_per_node=self.ntasks_per_node)
        try:
            spec = JobSpec(
                gpus=self.total_gpus, time_limit_s=self.time_limit_s or default_time_limit_s,
                project=self.project or default_project, user=user, name=self.name,
                nodes=self.nodes, gpus_per_node=gpn, qos=self.qos or "normal",
                depends_on=self.dependencies, array_index=array_index,
                reservation=self.reservation, exclusive=self.exclusive)
            spec.shape(node_gpus)
        except SpecError as e:
            raise e.located(source=self.source) from None
        return spec

    def to_json(self) -> dict[str, object]:
        """Every field but the script text, JSON-ready (``--test-only --json``)."""
        signal = self.signal
        export = self.export
        return {
            "name": self.name, "source": self.source, "partition": self.partition,
            "nodes": self.nodes, "gpus": self.gpus, "gpus_per_node": self.gpus_per_node,
            "gpus_per_task": self.gpus_per_task, "gpu_type": self.gpu_type,
            "total_gpus": self.total_gpus, "ntasks": self.ntasks,
            "ntasks_per_node": self.ntasks_per_node, "cpus_per_task": self.cpus_per_task,
            "time_limit_s": self.time_limit_s,
            "time_limit": format_time_limit(self.time_limit_s),
            "project": self.project, "qos": self.qos,
            "array": str(self.array) if self.array is not None else None,
            "array_tasks": self.array.task_count if self.array is not None else None,
            "dependencies": [str(d) for d in self.dependencies],
            "output": self.output, "error": self.error, "chdir": self.chdir,
            "signal": None if signal is None else {
                "number": signal.number, "time_s": signal.time_s,
                "batch_only": signal.batch_only},
            "exclusive": self.exclusive, "reservation": self.reservation,
            "export": None if export is None else {
                "inherit": export.inherit, "variables": dict(export.variables)},
            "requeue": self.requeue, "mem_mb": self.mem_mb,
            "mem_per_gpu_mb": self.mem_per_gpu_mb, "constraint": self.constraint,
            "exclude": list(self.exclude), "open_mode": self.open_mode,
            "mail_type": list(self.mail_type), "mail_user": self.mail_user,
            "gpu_bind": self.gpu_bind, "hint": self.hint, "comment": self.comment,
            "hold": self.hold, "test_only": self.test_only, "parsable": self.parsable,
            "wait": self.wait, "warnings": [w.to_json() for w in self.warnings],
        }
