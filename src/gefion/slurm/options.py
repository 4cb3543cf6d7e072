"""The sbatch option table, and reading option words into located, parsed settings.

Forms accepted, as getopt_long reads them: ``--opt=value``, ``--opt value``, ``-Xvalue``,
``-X value``, clustered short flags (``-HW``); a required value is the next word even when
it starts with ``-``. An option with an optional value (``--exclusive``) takes one only as
``--opt=value``. Abbreviated long options (``--tim``) are not accepted. Every occurrence is
parsed where it stands, so a bad value is refused with its own line even when a later
occurrence would have replaced it; then the last occurrence wins (:class:`Settings`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TypeVar

from gefion.slurm import values as v
from gefion.slurm.arrays import DEFAULT_MAX_ARRAY_SIZE, ArraySpec
from gefion.slurm.directives import Token
from gefion.slurm.errors import BadValue, Origin, SbatchError
from gefion.slurm.gpus import parse_gpus, parse_gres
from gefion.slurm.timefmt import parse_time_limit

T = TypeVar("T")


class Arg(Enum):
    NONE = "none"          # a flag
    REQUIRED = "required"  # --opt=value or --opt value
    OPTIONAL = "optional"  # --opt or --opt=value


def _text(value: str | None) -> str:
    assert value is not None
    return value


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One option: long name (no dashes), short letter, whether it takes a value, the parser
    of that value, and ``dest``, the setting it writes (``--no-requeue`` writes ``requeue``)."""

    long: str
    short: str | None
    arg: Arg
    parse: Callable[[str | None], object]
    dest: str = ""
    cli_only: bool = False

    @property
    def flag(self) -> str:
        return f"--{self.long}"

    @property
    def key(self) -> str:
        return self.dest or self.long


def _required(parse: Callable[[str], object]) -> Callable[[str | None], object]:
    return lambda value: parse(_text(value))


def _req(long: str, short: str | None, parse: Callable[[str], object], *,
         cli_only: bool = False) -> OptionSpec:
    return OptionSpec(long, short, Arg.REQUIRED, _required(parse), cli_only=cli_only)


def _flag(long: str, short: str | None, value: object = True, dest: str = "") -> OptionSpec:
    return OptionSpec(long, short, Arg.NONE, lambda _: value, dest)


OPTIONS: tuple[OptionSpec, ...] = (
    _req("job-name", "J", str), _req("nodes", "N", v.parse_nodes),
    _req("gpus", "G", parse_gpus), _req("gpus-per-node", None, parse_gpus),
    _req("gpus-per-task", None, parse_gpus), _req("gres", None, parse_gres),
    _req("time", "t", parse_time_limit), _req("account", "A", str), _req("qos", "q", str),
    _req("partition", "p", str), _req("array", "a", ArraySpec.parse),
    _req("dependency", "d", v.parse_dependencies), _req("output", "o", v.parse_output),
    _req("error", "e", v.parse_output), _req("chdir", "D", str),
    _req("signal", None, v.parse_signal),
    OptionSpec("exclusive", None, Arg.OPTIONAL, v.parse_exclusive),
    _req("reservation", None, str), _req("export", None, v.parse_export),
    _flag("requeue", None, True), _flag("no-requeue", None, False, dest="requeue"),
    _req("mem", None, v.parse_mem_mb), _req("mem-per-gpu", None, v.parse_mem_mb),
    _req("ntasks", "n", v.parse_count), _req("ntasks-per-node", None, v.parse_count),
    _req("cpus-per-task", "c", v.parse_count), _req("constraint", "C", str),
    _req("exclude", "x", v.parse_hostlist), _req("open-mode", None, v.parse_open_mode),
    _req("mail-type", None, v.parse_mail_type), _req("mail-user", None, str),
    _req("gpu-bind", None, v.parse_gpu_bind), _req("hint", None, v.parse_hint),
    _flag("test-only", None), _flag("hold", "H"), _req("begin", "b", v.parse_begin),
    _req("comment", None, str), _flag("parsable", None), _flag("wait", "W"),
    _req("wrap", None, str, cli_only=True), _flag("verbose", "v"), _flag("quiet", "Q"),
)
_LONG = {o.long: o for o in OPTIONS}


@dataclass(frozen=True, slots=True)
class OptionTable:
    """The options by long name and by short letter, with the site's value parsers."""

    long: Mapping[str, OptionSpec]
    short: Mapping[str, OptionSpec]


@functools.cache
def option_table(max_array_size: int = DEFAULT_MAX_ARRAY_SIZE) -> OptionTable:
    """The option table of a site whose MaxArraySize is ``max_array_size`` (the one
    site-dependent parser), built once per size: every submission reads options twice."""
    def parse_array(text: str) -> ArraySpec:
        return ArraySpec.parse(text, max_array_size=max_array_size)

    specs = dict(_LONG)
    specs["array"] = replace(_LONG["array"], parse=_required(parse_array))
    return OptionTable(specs, {o.short: specs[o.long] for o in OPTIONS if o.short})


#: sbatch options Gefion knows by name but does not take, for a clearer refusal.
UNSUPPORTED = frozenset({
    "nodelist", "w", "mem-per-cpu", "licenses", "L", "clusters", "M", "cluster", "deadline",
    "nice", "priority", "time-min", "tmp", "distribution", "m", "ntasks-per-socket",
    "ntasks-per-core", "ntasks-per-gpu", "cpus-per-gpu", "sockets-per-node",
    "cores-per-socket", "threads-per-core", "overcommit", "O", "oversubscribe", "s",
    "spread-job", "switches", "network", "burst-buffer", "bb", "bbf", "container",
    "het-group", "kill-on-invalid-dep", "no-kill", "k", "propagate", "uid", "gid",
    "wckey", "input", "i", "extra-node-info", "B", "core-spec", "S", "thread-spec",
    "gpu-freq", "cpu-freq", "acctg-freq", "profile", "delay-boot", "reboot", "mcs-label",
    "batch", "get-user-env", "ignore-pbs", "export-file",
    "nodefile", "F", "use-min-nodes", "prefer", "cluster-constraint", "tres-per-task",
})


@dataclass(frozen=True, slots=True)
class OptionUse:
    """One occurrence of an option, its value parsed, and where it was."""

    spec: OptionSpec
    value: object
    origin: Origin


def _unknown(name: str, token: Token, source: str) -> SbatchError:
    written = f"-{name}" if len(name) == 1 else f"--{name}"
    why = ("is an sbatch option that gefion submit does not support" if name in UNSUPPORTED
           else "is not an sbatch option")
    return SbatchError(f"{written} {why}", field=written, source=source, line=token.line)


def _use(spec: OptionSpec, raw: str | None, token: Token, source: str) -> OptionUse:
    origin = Origin(source, token.line, spec.flag, raw)
    if spec.cli_only and token.line is not None:
        raise origin.error(f"{spec.flag} is only valid on the command line")
    try:
        return OptionUse(spec, spec.parse(raw), origin)
    except BadValue as e:
        raise origin.error(e.message) from None


def read_options(tokens: Sequence[Token], *, source: str,
                 table: OptionTable | None = None) -> list[OptionUse]:
    """The options ``tokens`` hold, in order; refuses unknown options, missing or surplus
    values and stray words (``source`` locates the errors; ``Token.line`` is the line).

    ``table``: the site's options (:func:`option_table`; the default site's if None).
    """
    uses: list[OptionUse] = []
    i = 0
    table = table or option_table()
    specs, short = table.long, table.short

    def next_value(spec: OptionSpec, token: Token) -> str:
        nonlocal i
        if i + 1 >= len(tokens):
            raise SbatchError(f"{spec.flag} requires a value", field=spec.flag,
                              source=source, line=token.line)
        i += 1
        return tokens[i].text

    while i < len(tokens):
        token = tokens[i]
        text = token.text
        if text == "--" or not text.startswith("-") or text == "-":
            where = ("Invalid directive found in batch script" if token.line is not None
                     else "unexpected argument (the script is given apart from the flags)")
            raise SbatchError(f"{where}: {text!r}", source=source, line=token.line)
        if text.startswith("--"):
            name, eq, value = text[2:].partition("=")
            spec = specs.get(name)
            if spec is None:
                raise _unknown(name, token, source)
            if spec.arg is Arg.NONE and eq:
                raise SbatchError(f"{spec.flag} takes no value", field=spec.flag,
                                  source=source, line=token.line)
            raw = value if eq else None
            if spec.arg is Arg.REQUIRED and not eq:
                raw = next_value(spec, token)
            uses.append(_use(spec, raw, token, source))
        else:
            j = 1
            while j < len(text):
                spec = short.get(text[j])
                if spec is None:
                    raise _unknown(text[j], token, source)
                if spec.arg is Arg.NONE:
                    uses.append(_use(spec, None, token, source))
                    j += 1
                    continue
                raw = text[j + 1:] or next_value(spec, token)
                uses.append(_use(spec, raw, token, source))
                break
        i += 1
    return uses


class Settings:
    """The final setting of each option after overrides: the last occurrence wins."""

    def __init__(self, uses: Iterable[OptionUse]) -> None:
        self._by_key: dict[str, OptionUse] = {use.spec.key: use for use in uses}

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def origin(self, key: str) -> Origin:
        return self._by_key[key].origin

    def get(self, key: str, kind: type[T]) -> T | None:
        """The value of ``key`` (an option's long name), or None if it was not given."""
        setting = self._by_key.get(key)
        if setting is None or setting.value is None:  # --time=UNLIMITED, --gres=none
            return None
        assert isinstance(setting.value, kind), (key, setting.value)
        return setting.value

    def items(self) -> list[tuple[str, OptionUse]]:
        return list(self._by_key.items())
