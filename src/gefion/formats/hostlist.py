"""Slurm hostlist expressions: ``dgx[001-032]`` ⇄ ``["dgx001", …, "dgx032"]``.

Grammar (what Slurm's ``scontrol show hostnames`` accepts, less the rarely used steps)::

    hostlist := host ("," host)*           # commas inside brackets do not split hosts
    host     := (text | "[" ranges "]")+   # several bracket groups multiply out
    ranges   := range ("," range)*
    range    := DIGITS | DIGITS "-" DIGITS  # low <= high

Zero padding follows the low bound: ``[001-032]`` gives three digits, ``[1-10]`` none.
With several groups the leftmost varies slowest: ``a[1-2]b[3-4]`` is ``a1b3 a1b4 a2b3 a2b4``.
Any malformed expression raises :class:`~gefion.core.errors.TopologyError` naming it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from gefion.core.errors import TopologyError

#: Expanding more names than this is certainly a typo (``n[0-999999999]``), not a cluster.
MAX_HOSTS = 1_000_000

_RANGE = re.compile(r"(\d+)(?:-(\d+))?")
_TRAILING_NUMBER = re.compile(r"^(.*?)(\d+)(\D*)$")


def _bad(expr: str, why: str) -> TopologyError:
    return TopologyError(f"bad hostlist expression {expr!r}: {why}")


def _split_top(expr: str) -> list[str]:
    """Split at commas outside brackets, checking that brackets pair up and do not nest."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(expr):
        if ch == "[":
            if depth:
                raise _bad(expr, "brackets cannot nest")
            depth = 1
        elif ch == "]":
            if not depth:
                raise _bad(expr, "']' without '['")
            depth = 0
        elif ch == "," and not depth:
            parts.append(expr[start:i])
            start = i + 1
    if depth:
        raise _bad(expr, "'[' is never closed")
    parts.append(expr[start:])
    return parts


def _group(expr: str, body: str) -> list[str]:
    """The numbers a bracket body stands for, as zero-padded strings."""
    out: list[str] = []
    for item in body.split(","):
        m = _RANGE.fullmatch(item.strip())
        if not m:
            raise _bad(expr, f"[{body}] is not a list of numbers and ranges like 001-032")
        lo_text, hi_text = m.group(1), m.group(2) or m.group(1)
        lo, hi = int(lo_text), int(hi_text)
        if lo > hi:
            raise _bad(expr, f"range {item.strip()} runs backwards")
        if len(out) + hi - lo + 1 > MAX_HOSTS:
            raise _bad(expr, f"more than {MAX_HOSTS:,} names")
        width = len(lo_text)
        out.extend(f"{n:0{width}d}" for n in range(lo, hi + 1))
    return out


def _expand_host(expr: str, host: str) -> list[str]:
    pieces: list[list[str]] = []
    pos = 0
    while pos < len(host):
        open_at = host.find("[", pos)
        if open_at < 0:
            pieces.append([host[pos:]])
            break
        if open_at > pos:
            pieces.append([host[pos:open_at]])
        close_at = host.index("]", open_at)  # _split_top made sure brackets pair up
        pieces.append(_group(expr, host[open_at + 1:close_at]))
        pos = close_at + 1
    count = 1
    for p in pieces:
        count *= len(p)
    if count > MAX_HOSTS:
        raise _bad(expr, f"more than {MAX_HOSTS:,} names")
    return ["".join(parts) for parts in itertools.product(*pieces)]


def expand(expr: str) -> list[str]:
    """Every host name ``expr`` stands for, in order (duplicates are kept, as written).

    Raises :class:`TopologyError` for an empty or malformed expression.
    """
    if not expr.strip():
        raise _bad(expr, "it is empty")
    names: list[str] = []
    for host in _split_top(expr):
        host = host.strip()
        if not host:
            raise _bad(expr, "an empty name between commas")
        if re.search(r"\s", host):
            raise _bad(expr, f"{host!r} contains white space")
        if "[]" in host:
            raise _bad(expr, "empty brackets")
        names.extend(_expand_host(expr, host))
        if len(names) > MAX_HOSTS:
            raise _bad(expr, f"more than {MAX_HOSTS:,} names")
    return names


def expand_all(exprs: Iterable[str]) -> list[str]:
    """Expand each expression in turn and concatenate the names."""
    return [name for expr in exprs for name in expand(expr)]


def _ranges(numbers: list[int], width: int) -> str:
    runs: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        lo, hi = f"{start:0{width}d}", f"{prev:0{width}d}"
        runs.append(lo if start == prev else f"{lo}-{hi}")
        if n is not None:
            start = prev = n
    return ",".join(runs)


def compress(names: Iterable[str]) -> str:
    """A compact hostlist expression for ``names``; ``expand`` of it gives them back.

    Names are grouped by the text around their last run of digits and by zero-padding;
    each group becomes ``prefix[ranges]suffix``, groups in order of first appearance,
    numbers sorted within a group. Duplicates are dropped. A name that fits both a padded
    group and an unpadded one (``dgx100`` beside ``dgx001``) joins the padded group.
    """
    unique = list(dict.fromkeys(names))
    padded: set[tuple[str, str, int]] = set()
    parsed: list[tuple[str, str, str] | None] = []
    for name in unique:
        m = _TRAILING_NUMBER.match(name)
        parsed.append((m.group(1), m.group(2), m.group(3)) if m else None)
        if m and len(m.group(2)) > 1 and m.group(2).startswith("0"):
            padded.add((m.group(1), m.group(3), len(m.group(2))))
    groups: dict[tuple[str, str, int] | str, list[int]] = {}
    for name, parts in zip(unique, parsed, strict=True):
        if parts is None:
            groups.setdefault(name, [])
            continue
        prefix, digits, suffix = parts
        # Width 0 is "no padding": the number printed as is. A zero-led number needs its
        # width; an unpadded one of the same length joins a padded group if there is one.
        width = len(digits) if digits.startswith("0") and len(digits) > 1 else 0
        if width == 0 and (prefix, suffix, len(digits)) in padded:
            width = len(digits)
        groups.setdefault((prefix, suffix, width), []).append(int(digits))
    out: list[str] = []
    for key, numbers in groups.items():
        if isinstance(key, str):
            out.append(key)
            continue
        prefix, suffix, width = key
        numbers.sort()
        body = _ranges(numbers, width)
        out.append(f"{prefix}{body}{suffix}" if len(numbers) == 1 else
                   f"{prefix}[{body}]{suffix}")
    return ",".join(out)
