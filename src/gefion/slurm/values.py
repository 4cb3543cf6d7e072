"""Parsers for the values of sbatch options that are more than a plain string.

Each takes the text as written and returns a typed value, or raises
:class:`~gefion.slurm.errors.BadValue` saying what was expected; the option parser adds
where the value came from. Units: memory in MB (MiB, as Slurm counts), times in seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gefion.core.errors import SpecError, TopologyError
from gefion.core.jobs import Dependency
from gefion.formats.hostlist import expand
from gefion.slurm.errors import BadValue

_MEM = re.compile(r"([0-9]+)([KMGTkmgt]?)")
_MEM_FACTOR = {"": 1, "M": 1, "G": 1024, "T": 1024 * 1024}

#: Signal names sbatch knows (``sig_name2num``), with their Linux numbers.
SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "ABRT": 6, "KILL": 9, "USR1": 10, "USR2": 12,
           "ALRM": 14, "TERM": 15, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
           "TTOU": 22, "URG": 23}
#: The highest signal number Linux has (SIGRTMAX).
MAX_SIGNAL = 64

MAIL_TYPES = frozenset({"NONE", "BEGIN", "END", "FAIL", "REQUEUE", "ALL", "INVALID_DEPEND",
                        "STAGE_OUT", "TIME_LIMIT", "TIME_LIMIT_90", "TIME_LIMIT_80",
                        "TIME_LIMIT_50", "ARRAY_TASKS"})
HINTS = frozenset({"compute_bound", "memory_bound", "multithread", "nomultithread"})
_GPU_BIND = re.compile(r"(?:verbose,)?(?:closest|none|(?:single|per_task):[0-9]+|"
                       r"(?:map_gpu|mask_gpu):[0-9a-fA-Fx,*]+)")


def parse_count(text: str, *, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (digits only, as Slurm's ``parse_int``)."""
    if not (text.isascii() and text.isdecimal()) or int(text) < minimum:
        raise BadValue(f"invalid number {text!r}: expected a whole number >= {minimum}")
    return int(text)


@dataclass(frozen=True, slots=True)
class NodeRange:
    """``-N min[-max]``: Gefion allocates ``min`` nodes; ``max`` only earns a warning."""

    min: int
    max: int | None = None


def parse_nodes(text: str) -> NodeRange:
    low, dash, high = text.partition("-")
    lo = parse_count(low)
    if not dash:
        return NodeRange(lo)
    hi = parse_count(high)
    if hi < lo:
        raise BadValue(f"invalid node count {text!r}: the maximum is below the minimum")
    return NodeRange(lo, hi)


def parse_mem_mb(text: str) -> int:
    """Megabytes of ``<size>[K|M|G|T]`` (default M; K rounds up), as ``str_to_mbytes``.
    0 means all of a node's memory."""
    m = _MEM.fullmatch(text)
    if m is None:
        raise BadValue(f"invalid memory size {text!r}: expected a whole number with an "
                       "optional unit K, M, G or T (default M)")
    number, unit = int(m[1]), m[2].upper()
    return -(-number // 1024) if unit == "K" else number * _MEM_FACTOR[unit]


def format_mem(mb: int) -> str:
    """``2048G`` for 2,097,152 MB; whole gigabytes as G, anything else as M."""
    return f"{mb // 1024}G" if mb % 1024 == 0 and mb else f"{mb}M"


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """``--signal``: send ``number`` ``time_s`` seconds before the time limit; only to the
    batch shell when ``batch_only`` (``B:``). ``at_reservation_end`` is ``R:``."""

    number: int
    time_s: int = 60
    batch_only: bool = False
    at_reservation_end: bool = False


def parse_signal(text: str) -> SignalSpec:
    """``[{R|B|RB}:]<sig_num>[@sig_time]``; a name with or without ``SIG``, any case."""
    flags, colon, rest = text.partition(":")
    if not colon or flags.upper() not in {"B", "R", "RB", "BR"}:
        flags, rest = "", text
    sig_text, at, time_text = rest.partition("@")
    name = sig_text.upper().removeprefix("SIG")
    if sig_text.isascii() and sig_text.isdecimal():
        number = int(sig_text)
    elif name in SIGNALS:
        number = SIGNALS[name]
    else:
        raise BadValue(f"invalid signal {sig_text!r}: expected a number or one of "
                       f"{', '.join(SIGNALS)}")
    if not 1 <= number <= MAX_SIGNAL:
        raise BadValue(f"invalid signal number {number}: Linux signals are 1-{MAX_SIGNAL}")
    time_s = 60
    if at:
        if not (time_text.isascii() and time_text.isdecimal()) or int(time_text) > 0xFFFF:
            raise BadValue(f"invalid signal time {time_text!r}: expected 0-65535 seconds")
        time_s = int(time_text)
    return SignalSpec(number, time_s, "B" in flags.upper(), "R" in flags.upper())


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """``--export``: ``inherit`` the submitting environment (ALL) or not (NONE, or a bare
    list), plus ``variables``: name → value, or None for "the submitter's current value"."""

    inherit: bool
    variables: tuple[tuple[str, str | None], ...] = ()


def parse_export(text: str) -> ExportSpec:
    """``ALL``, ``NONE``, or ``[ALL,]NAME[=value][,...]`` (a list without ALL exports only
    the names listed, as in Slurm)."""
    if text.upper() in {"ALL", "NONE"}:
        return ExportSpec(inherit=text.upper() == "ALL")
    inherit = False
    variables: list[tuple[str, str | None]] = []
    for item in text.split(","):
        if item.upper() == "ALL":
            inherit = True
            continue
        name, eq, value = item.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise BadValue(f"invalid --export item {item!r}: expected ALL, NONE or NAME[=value]")
        variables.append((name, value if eq else None))
    return ExportSpec(inherit, tuple(variables))


def parse_open_mode(text: str) -> str:
    """``append`` or ``truncate``; sbatch reads only the first letter."""
    if text[:1].lower() == "a":
        return "append"
    if text[:1].lower() == "t":
        return "truncate"
    raise BadValue(f"invalid open mode {text!r}: expected append or truncate")


def parse_mail_type(text: str) -> tuple[str, ...]:
    types = tuple(t.strip().upper() for t in text.split(","))
    for t in types:
        if t not in MAIL_TYPES:
            raise BadValue(f"invalid mail type {t!r}: expected any of "
                           f"{', '.join(sorted(MAIL_TYPES))}")
    return types


def parse_hint(text: str) -> str:
    if text.lower() not in HINTS:
        raise BadValue(f"invalid hint {text!r}: expected one of {', '.join(sorted(HINTS))}")
    return text.lower()


def parse_gpu_bind(text: str) -> str:
    if not _GPU_BIND.fullmatch(text):
        raise BadValue(f"invalid GPU binding {text!r}: expected [verbose,]closest, none, "
                       "single:N, per_task:N, map_gpu:LIST or mask_gpu:LIST")
    return text


def parse_exclusive(text: str | None) -> bool:
    """Bare ``--exclusive`` only: ``=user``, ``=mcs`` and ``=topo`` share nodes in ways
    Gefion cannot arrange, so they are refused rather than taken for plain exclusivity."""
    if text is None:
        return True
    raise BadValue(f"cannot be honoured: --exclusive={text}: only a bare --exclusive "
                   "(whole nodes) is supported")


def parse_begin(text: str) -> bool:
    """``now`` is accepted (it changes nothing); any later start is refused."""
    if text.strip().lower() == "now":
        return True
    raise BadValue(f"cannot be honoured: --begin={text}: deferred starts are not supported; "
                   "submit with --hold and release the job when it should start")


def parse_dependencies(text: str) -> tuple[Dependency, ...]:
    try:
        return Dependency.parse(text)
    except SpecError as e:
        raise BadValue(f"invalid dependency {text!r}: {e.message}") from None


def parse_hostlist(text: str) -> tuple[str, ...]:
    try:
        return tuple(dict.fromkeys(expand(text)))
    except TopologyError as e:
        raise BadValue(e.message) from None


def parse_output(text: str) -> str:
    """A filename pattern; ``none`` means ``/dev/null``, as in sbatch."""
    return "/dev/null" if text.lower() == "none" else text
