"""Slurm time limits (``--time``): text ⇄ seconds.

The formats ``sbatch --time`` accepts, as Slurm's ``time_str2secs`` reads them::

    minutes                      90          →  5,400 s
    minutes:seconds              90:30       →  5,430 s
    hours:minutes:seconds        1:30:00     →  5,400 s
    days-hours                   2-12        → 216,000 s
    days-hours:minutes           2-12:30     → 217,800 s
    days-hours:minutes:seconds   2-12:30:15  → 217,815 s

Without a day part, a bare number is *minutes* and two fields are *minutes:seconds*; only
three fields are hours:minutes:seconds. As in Slurm, fields are not range-checked
(``1:90:00`` is two and a half hours). ``UNLIMITED``, ``INFINITE`` (any case) and ``-1``
mean no limit, and so does ``0`` ("a time limit of zero requests that no time limit be
imposed"): :func:`parse_time_limit` returns None for all four, and the caller applies the
QOS or partition maximum.

Two deliberate differences from Slurm: seconds are kept exactly (Slurm rounds a limit up to
whole minutes, so ``0:30`` runs for 60 s there and 30 s here), and text that Slurm's
scanner lets through by accident (``1-``, ``-5``) is refused.
"""

from __future__ import annotations

import re

from gefion.slurm.errors import BadValue

_UNLIMITED = frozenset({"UNLIMITED", "INFINITE", "-1"})
_TIME = re.compile(r"(?:(?P<days>[0-9]+)-)?(?P<a>[0-9]+)(?::(?P<b>[0-9]+))?(?::(?P<c>[0-9]+))?")

_EXPECTED = ("expected minutes, minutes:seconds, hours:minutes:seconds, days-hours, "
             "days-hours:minutes, days-hours:minutes:seconds or UNLIMITED")


def parse_time_limit(text: str) -> int | None:
    """Seconds of the Slurm time limit ``text``; None for no limit (UNLIMITED, -1, 0).

    Raises :class:`~gefion.slurm.errors.BadValue` naming ``text`` when it is none of the
    formats in the module docstring.
    """
    value = text.strip()
    if value.upper() in _UNLIMITED:
        return None
    m = _TIME.fullmatch(value)
    if m is None:
        raise BadValue(f"invalid time limit {text!r}: {_EXPECTED}")
    fields = [int(f) for f in (m["a"], m["b"], m["c"]) if f is not None]
    if m["days"] is not None:
        # After a day part the fields are hours[:minutes[:seconds]].
        hours, minutes, seconds = (*fields, 0, 0)[:3]
        total = ((int(m["days"]) * 24 + hours) * 60 + minutes) * 60 + seconds
    elif len(fields) == 3:
        hours, minutes, seconds = fields
        total = (hours * 60 + minutes) * 60 + seconds
    else:
        minutes, seconds = (*fields, 0)[:2]
        total = minutes * 60 + seconds
    return total or None


def format_time_limit(seconds: int | None) -> str:
    """Slurm's rendering of a limit: ``D-HH:MM:SS``, ``HH:MM:SS`` under a day, or
    ``UNLIMITED`` for None. Raises :class:`BadValue` for a negative number of seconds."""
    if seconds is None:
        return "UNLIMITED"
    if seconds < 0:
        raise BadValue(f"a time limit cannot be negative, got {seconds} s")
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock
