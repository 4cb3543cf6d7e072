"""Job arrays (``--array``): which task indices, and how many may run at once.

Grammar, as ``sbatch --array`` accepts it::

    array  := items ["%" limit]          # limit: most tasks running at once, >= 1
    items  := item ("," item)*
    item   := N | N "-" M [":" step]     # N <= M, step >= 1

``0-15:4%2`` is tasks 0, 4, 8 and 12, two at a time; ``1,3,5-7`` is 1, 3, 5, 6 and 7.
Indices are kept sorted and unique. Every index must be below the site's ``MaxArraySize``
(Slurm's default 1001, so 0–1000), which also bounds the number of tasks; a
``max_array_size`` of 0 disables arrays, as in Slurm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gefion.slurm.errors import BadValue

#: Slurm's default MaxArraySize: indices 0..1000.
DEFAULT_MAX_ARRAY_SIZE = 1001

_ITEM = re.compile(r"(?P<lo>[0-9]+)(?:-(?P<hi>[0-9]+)(?::(?P<step>[0-9]+))?)?")


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """The task indices of a job array (sorted, unique, non-empty) and its running limit."""

    indices: tuple[int, ...]
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        if not self.indices:
            raise BadValue("a job array needs at least one index")
        if list(self.indices) != sorted(set(self.indices)) or self.indices[0] < 0:
            raise BadValue("array indices must be sorted, unique and >= 0")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise BadValue(f"the running-task limit must be >= 1, got {self.max_concurrent}")

    @classmethod
    def parse(cls, text: str, *, max_array_size: int = DEFAULT_MAX_ARRAY_SIZE) -> ArraySpec:
        """The array ``text`` stands for; :class:`BadValue` naming ``text`` if malformed or
        if an index is ``max_array_size`` or more."""

        def bad(why: str) -> BadValue:
            return BadValue(f"invalid array specification {text!r}: {why}")

        if max_array_size <= 0:
            raise bad("job arrays are disabled here (MaxArraySize=0)")
        items_text, percent, limit_text = text.strip().partition("%")
        limit: int | None = None
        if percent:
            if not limit_text.isdecimal() or not limit_text.isascii():
                raise bad("the limit after '%' must be a whole number")
            limit = int(limit_text)
            if limit < 1:
                raise bad("the limit after '%' must be at least 1")
        indices: set[int] = set()
        for item in items_text.split(","):
            m = _ITEM.fullmatch(item.strip())
            if m is None:
                raise bad(f"{item.strip()!r} is not N, N-M or N-M:STEP")
            lo = int(m["lo"])
            hi = int(m["hi"]) if m["hi"] is not None else lo
            step = int(m["step"]) if m["step"] is not None else 1
            if hi < lo:
                raise bad(f"range {lo}-{hi} runs backwards")
            if step < 1:
                raise bad(f"step {step} must be at least 1")
            if hi >= max_array_size:
                raise bad(f"index {hi} is above the maximum {max_array_size - 1} "
                          f"(MaxArraySize={max_array_size})")
            indices.update(range(lo, hi + 1, step))
        return cls(tuple(sorted(indices)), limit)

    @property
    def task_count(self) -> int:
        return len(self.indices)

    def __str__(self) -> str:
        """The canonical form: consecutive runs as ``lo-hi``; then runs of three or more
        evenly spaced indices as ``lo-hi:step``; the rest listed; then ``%limit``.
        ``ArraySpec.parse(str(spec)) == spec``."""
        idx = self.indices
        parts: list[str] = []
        i = 0
        while i < len(idx):
            j = i
            while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
                j += 1
            if j > i:
                parts.append(f"{idx[i]}-{idx[j]}")
                i = j + 1
                continue
            # A progression stops before an index that starts a consecutive run.
            step = idx[i + 1] - idx[i] if i + 1 < len(idx) else 0
            while (j + 1 < len(idx) and idx[j + 1] - idx[j] == step
                   and not (j + 2 < len(idx) and idx[j + 2] == idx[j + 1] + 1)):
                j += 1
            if j - i >= 2:
                parts.append(f"{idx[i]}-{idx[j]}:{step}")
                i = j + 1
            else:
                parts.append(str(idx[i]))
                i += 1
        limit = f"%{self.max_concurrent}" if self.max_concurrent is not None else ""
        return ",".join(parts) + limit
