"""A :class:`~gefion.core.jobs.JobSpec` as JSON and back, for the ``spec`` column.

The stored object holds the JobSpec fields under their own names (enums as their values,
``depends_on`` as Slurm strings like ``"afterok:12"``) beside submission extras (script
path, output patterns, env...), which :func:`spec_from_json` ignores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from enum import Enum
from typing import Any

from gefion.core.jobs import Dependency, JobSpec

_SPEC_FIELDS = tuple(f.name for f in fields(JobSpec))


def spec_to_json(spec: JobSpec) -> dict[str, Any]:
    """The JobSpec fields as a JSON object."""
    out: dict[str, Any] = {}
    for name in _SPEC_FIELDS:
        value = getattr(spec, name)
        if name == "depends_on":
            value = [str(d) for d in value]
        elif isinstance(value, Enum):
            value = value.value
        out[name] = value
    return out


def spec_from_json(obj: Mapping[str, Any]) -> JobSpec:
    """The JobSpec stored in ``obj`` (extras ignored); validated as on submission.

    Raises :class:`~gefion.core.errors.SpecError` for a stored spec that is no longer valid.
    """
    kwargs = {name: obj[name] for name in _SPEC_FIELDS if name in obj}
    if "depends_on" in kwargs:
        depends_on = kwargs["depends_on"]
        kwargs["depends_on"] = Dependency.parse(",".join(depends_on)) if depends_on else ()
    return JobSpec(**kwargs)
