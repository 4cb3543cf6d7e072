"""``parse_submission``: a batch script and command-line flags → a :class:`Submission`.

The phases, as sbatch runs them:

1. read the flags (``argv``), to learn of ``--wrap``; a wrapped command becomes the script;
2. check the script (``#!``, no DOS line breaks...) and take out its ``#SBATCH`` options;
3. apply the script's options, then the flags: the last occurrence of an option wins, so a
   flag overrides a directive;
4. review the result against the :class:`Site` (refuse what cannot be honoured, warn about
   what has no effect) and fill in Slurm's defaults.

No I/O: the caller reads the script and passes its text and its path (``source``).
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from gefion.slurm.arrays import ArraySpec
from gefion.slurm.directives import Token, check_script, extract_directives, wrap_command
from gefion.slurm.errors import COMMAND_LINE, Diagnostic, SbatchError
from gefion.slurm.gpus import GpuRequest
from gefion.slurm.options import OptionUse, Settings, option_table, read_options
from gefion.slurm.patterns import default_output
from gefion.slurm.site import Site, gpu_types, gpus_per_node, review
from gefion.slurm.submission import Submission
from gefion.slurm.values import ExportSpec, NodeRange, SignalSpec

_DEFAULT_SITE = Site()


def _default_name(source: str, wrapped: bool) -> str:
    """sbatch's job name when ``-J`` is absent: ``wrap``, else the script's file name
    (``sbatch`` for a script read from standard input)."""
    if wrapped:
        return "wrap"
    if source.startswith("<"):
        return "sbatch"
    return posixpath.basename(source) or "sbatch"


def _read_script(script_text: str, source: str, max_array_size: int
                 ) -> tuple[tuple[OptionUse, ...], tuple[Diagnostic, ...]]:
    """Phase 2: the checked script's directives as options, and warnings about the
    ``#SBATCH`` lines it ignores."""
    check_script(script_text, source=source)
    tokens, ignored = extract_directives(script_text, source=source)
    table = option_table(max_array_size)
    return tuple(read_options(tokens, source=source, table=table)), ignored


#: Scripts up to this size have their directives read once (a few hundred kept): a sweep,
#: or a user submitting again, sends the same script many times. Everything cached is
#: immutable, and a refused script is not cached (its error is raised again).
_CACHED_SCRIPT_CHARS = 65_536
_script_options = functools.lru_cache(maxsize=256)(_read_script)

#: Options :func:`~gefion.slurm.site.review` never reads: the free text that tells the jobs
#: of a sweep apart. Review sees the settings without them, so its verdict depends only on
#: the rest, and a sweep that varies only these is reviewed once.
_NOT_REVIEWED = frozenset({"job-name", "output", "error", "comment", "chdir", "export"})
_REVIEWED_MAX = 1024
_reviewed: dict[tuple[object, ...], tuple[Diagnostic, ...]] = {}


def _review(s: Settings, site: Site) -> tuple[Diagnostic, ...]:
    """``review`` of ``s`` without :data:`_NOT_REVIEWED`, remembered by where and how each
    remaining option was written (an option's value is a function of that text): a refusal
    is raised again each time, never remembered."""
    uses = [use for key, use in s.items() if key not in _NOT_REVIEWED]
    key = (site, *(use.origin for use in uses))
    warnings = _reviewed.get(key)
    if warnings is None:
        warnings = review(Settings(uses), site)
        if len(_reviewed) >= _REVIEWED_MAX:
            _reviewed.clear()
        _reviewed[key] = warnings
    return warnings


def parse_submission(script_text: str | None, *, source: str = "<script>",
                     argv: Sequence[str] = (), site: Site = _DEFAULT_SITE) -> Submission:
    """Parse a batch script and its command-line flags as sbatch would, for ``site``.

    ``script_text`` is the script's content (None when ``argv`` holds ``--wrap``), ``source``
    its path for messages, ``argv`` the flags alone (not the script path). Raises
    :class:`~gefion.slurm.errors.SbatchError` (an ``InputError``) naming source, line and
    option for anything refused.
    """
    table = option_table(site.max_array_size)
    cli = read_options([Token(a, None) for a in argv], source=COMMAND_LINE, table=table)
    wrap = Settings(cli).get("wrap", str)
    if wrap is not None:
        if script_text is not None:
            raise SbatchError("Script arguments not permitted with --wrap option",
                              field="--wrap", source=COMMAND_LINE)
        script_text, source = wrap_command(wrap), "<wrap>"
    elif script_text is None:
        raise SbatchError("no batch script: give a script or --wrap", source=COMMAND_LINE)
    wrapped = wrap is not None
    if len(script_text) > _CACHED_SCRIPT_CHARS:
        script, ignored = _read_script(script_text, source, site.max_array_size)
        return _submission(script_text, source, script, ignored, cli, site, wrapped)
    # A sweep sends one script with flags that differ only in free text (its own job
    # name, output file...): the rest of the parse is done once for it.
    script, ignored = _script_options(script_text, source, site.max_array_size)
    fixed = [use for use in cli if use.spec.key not in _NOT_REVIEWED]
    key = (script_text, source, site, *(use.origin for use in fixed))
    parsed = _parsed.get(key)
    if parsed is None:
        base = _submission(script_text, source, script, ignored, fixed, site, wrapped)
        if len(_parsed) >= _PARSED_MAX:
            _parsed.clear()
        parsed = _parsed[key] = (base, {f.name: getattr(base, f.name) for f in _FIELDS})
    if len(fixed) == len(cli):
        return parsed[0]
    free = Settings([*(use for use in script if use.spec.key in _NOT_REVIEWED),
                     *(use for use in cli if use.spec.key in _NOT_REVIEWED)])
    # As dataclasses.replace, at half its cost: a sweep makes one per job.
    return Submission(**{**parsed[1], **_free_text(free, source, wrapped,
                                                   is_array=parsed[0].array is not None)})


#: Submissions parsed from a script of at most :data:`_CACHED_SCRIPT_CHARS` and the flags
#: other than free text, by their text, each with its fields (a few hundred kept; a
#: refusal is never kept). The free text (:data:`_NOT_REVIEWED`) is applied on top.
_PARSED_MAX = 512
_parsed: dict[tuple[object, ...], tuple[Submission, dict[str, Any]]] = {}
_FIELDS = fields(Submission)


def _free_text(s: Settings, source: str, wrapped: bool, *, is_array: bool) -> dict[str, Any]:
    """The fields of :data:`_NOT_REVIEWED` options, with Slurm's defaults: the script's
    name, an (array) output pattern, error following output."""
    output = s.get("output", str) or default_output(is_array=is_array)
    return {"name": s.get("job-name", str) or _default_name(source, wrapped),
            "output": output, "error": s.get("error", str) or output,
            "chdir": s.get("chdir", str), "export": s.get("export", ExportSpec),
            "comment": s.get("comment", str)}


def _submission(script_text: str, source: str, script: Sequence[OptionUse],
                ignored: Sequence[Diagnostic], cli: Sequence[OptionUse], site: Site,
                wrapped: bool) -> Submission:
    """Phases 3 and 4: the script's options, then the flags; reviewed; defaults filled."""
    s = Settings([*script, *cli])
    # Script warnings in line order, then the command line's.
    warnings = tuple(sorted((*ignored, *_review(s, site)),
                            key=lambda w: (w.line is None, w.line or 0)))

    array = s.get("array", ArraySpec)
    nodes = s.get("nodes", NodeRange)
    types = [t for _, t in gpu_types(s)]
    gpus, per_task = s.get("gpus", GpuRequest), s.get("gpus-per-task", GpuRequest)
    return Submission(
        script=script_text, source=source,
        partition=s.get("partition", str) or site.default_partition,
        nodes=nodes.min if nodes is not None else None,
        gpus=gpus.count if gpus is not None else None,
        gpus_per_node=gpus_per_node(s),
        gpus_per_task=per_task.count if per_task is not None else None,
        gpu_type=types[0] if types else None,
        ntasks=s.get("ntasks", int), ntasks_per_node=s.get("ntasks-per-node", int),
        cpus_per_task=s.get("cpus-per-task", int),
        time_limit_s=s.get("time", int), project=s.get("account", str),
        qos=s.get("qos", str), array=array,
        dependencies=s.get("dependency", tuple) or (),
        signal=s.get("signal", SignalSpec),
        exclusive=bool(s.get("exclusive", bool)), reservation=s.get("reservation", str),
        requeue=s.get("requeue", bool),
        mem_mb=s.get("mem", int), mem_per_gpu_mb=s.get("mem-per-gpu", int),
        constraint=s.get("constraint", str), exclude=s.get("exclude", tuple) or (),
        open_mode=s.get("open-mode", str), mail_type=s.get("mail-type", tuple) or (),
        mail_user=s.get("mail-user", str), gpu_bind=s.get("gpu-bind", str),
        hint=s.get("hint", str),
        hold=bool(s.get("hold", bool)), test_only=bool(s.get("test-only", bool)),
        parsable=bool(s.get("parsable", bool)), wait=bool(s.get("wait", bool)),
        warnings=warnings, **_free_text(s, source, wrapped, is_array=array is not None),
    )
