"""Slurm batch scripts and sbatch options, parsed as Slurm parses them, for ``gefion submit``.

Pure functions of the text the caller passes in: no file, clock or environment is read.
The entry point is :func:`parse_submission`; what each option becomes on a Gefion site
(accepted, accepted with a warning, or refused) is tabled in :mod:`gefion.slurm.site`.
"""

from gefion.slurm.arrays import ArraySpec
from gefion.slurm.errors import BadValue, Diagnostic, SbatchError
from gefion.slurm.parse import parse_submission
from gefion.slurm.patterns import expand_pattern
from gefion.slurm.site import Site
from gefion.slurm.submission import Submission
from gefion.slurm.timefmt import format_time_limit, parse_time_limit

__all__ = [
    "ArraySpec",
    "BadValue",
    "Diagnostic",
    "SbatchError",
    "Site",
    "Submission",
    "expand_pattern",
    "format_time_limit",
    "parse_submission",
    "parse_time_limit",
]
