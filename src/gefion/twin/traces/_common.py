"""What every reader shares: a CSV :class:`Table` whose errors name the file, line and
column; column parsers that run vectorised with numpy and fall back to a row-by-row scan
only to locate a bad value; the common selection options; and :func:`finish`, which
filters, sorts and shifts :class:`Columns` into a :class:`~gefion.twin.traces.model.Trace`.

Times are seconds on the source's own axis. For traces with calendar times that axis is
"seconds since 1970-01-01 reading the naive datetime as if it were UTC": differences are
right and no time zone is guessed.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from gefion.core.errors import InputError
from gefion.twin.gcpause import paused_gc
from gefion.twin.traces.model import ClusterHint, Trace, TraceJob

_EPOCH = datetime(1970, 1, 1)


def fail(path: Path | str, line: int | None, field: str | None, message: str) -> NoReturn:
    """Raise the one error every reader raises: ``file:line: field 'x': message``."""
    raise InputError(message, field=field, source=str(path), line=line)


class Table:
    """A CSV file read whole: ``header`` (cells stripped) and the non-blank ``rows``.

    Rows are checked to have as many cells as the header. :meth:`line_of` gives the 1-based
    line (as a person counts lines in the file) of a row, found only when an error needs it.
    """

    def __init__(self, path: Path, *, delimiter: str = ",") -> None:
        self.path = path
        self._delimiter = delimiter
        try:
            self._text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            fail(path, None, None, f"cannot read: {exc.strerror or exc}")
        except UnicodeDecodeError as exc:
            fail(path, None, None, f"not UTF-8 text: {exc.reason}")
        rows = self._plain_rows()
        if rows is None:
            reader = csv.reader(io.StringIO(self._text, newline=""), delimiter=delimiter)
            try:
                header = next(reader)
                rows = [row for row in reader if row]  # csv gives [] for a blank line
            except StopIteration:
                fail(path, 1, None, "empty file: a header line is required")
            except csv.Error as exc:
                fail(path, reader.line_num, None, f"unreadable CSV: {exc}")
        else:
            header = rows.pop(0)
        self.header = [cell.strip() for cell in header]
        self.rows = rows
        width = len(self.header)
        if set(map(len, rows)) - {width}:
            for k, row in enumerate(rows):
                if len(row) != width:
                    fail(path, self.line_of(k), None,
                         f"expected {width} fields, got {len(row)}")
        self._columns: list[tuple[str, ...]] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _plain_rows(self) -> list[list[str]] | None:
        """Header and non-blank rows of a file without quotes or carriage returns, split
        directly (what the csv module gives for such a file, three times faster); None
        for any other file."""
        text = self._text
        if not text or text[0] == "\n" or '"' in text or "\r" in text:
            return None
        sep = self._delimiter
        return [line.split(sep) for line in text.split("\n") if line]

    def line_of(self, k: int) -> int:
        """The line of row ``k`` (0-based among the non-blank data rows)."""
        reader = csv.reader(io.StringIO(self._text, newline=""), delimiter=self._delimiter)
        next(reader)
        seen = -1
        for row in reader:
            if row:
                seen += 1
                if seen == k:
                    return reader.line_num
        return reader.line_num

    def require(self, required: Iterable[str], optional: Iterable[str] = (), *,
                strict: bool = False) -> None:
        """Check the header: required columns present; with ``strict`` no unknown ones."""
        required, optional = tuple(required), tuple(optional)
        for k, name in enumerate(self.header):
            if name in self.header[:k]:
                fail(self.path, 1, name, "column appears twice")
        for name in required:
            if name not in self.header:
                fail(self.path, 1, name,
                     f"required column missing; the header is {','.join(self.header)}")
        if strict:
            known = set(required) | set(optional)
            for name in self.header:
                if name not in known:
                    fail(self.path, 1, name, "unknown column; expected "
                         f"{','.join(required)} and optionally {','.join(optional)}")

    def raw(self, name: str) -> tuple[str, ...]:
        """The cells of column ``name``, as written."""
        if self._columns is None:
            self._columns = list(zip(*self.rows, strict=True)) or [() for _ in self.header]
        return self._columns[self.header.index(name)]

    def text(self, name: str) -> list[str]:
        return [cell.strip() for cell in self.raw(name)]

    def _convert(self, name: str, fast: Callable[[Sequence[str]], np.ndarray],
                 slow: Callable[[str], Any], rows: np.ndarray | None) -> np.ndarray:
        """``fast`` on the column (or its ``rows``); on failure, ``slow`` per cell to find
        the bad one (``slow`` raises ``ValueError(message)``). If every cell passes
        ``slow``, its results are used."""
        column = self.raw(name)
        cells = column if rows is None else [column[k] for k in rows.tolist()]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # e.g. numpy on time zones: use the slow path
                return fast(cells)
        except (ValueError, OverflowError, UserWarning, DeprecationWarning):
            pass
        values = []
        for k, cell in enumerate(cells):
            try:
                values.append(slow(cell))
            except (ValueError, OverflowError) as exc:
                fail(self.path, self.line_of(k if rows is None else int(rows[k])), name,
                     str(exc))
        return np.array(values)

    def ints(self, name: str, *, minimum: int = 0, rows: np.ndarray | None = None
             ) -> np.ndarray:
        """Column ``name`` (or its ``rows``) as int64, each ``>= minimum``."""
        def slow(cell: str) -> int:
            try:
                return int(cell)
            except ValueError:
                raise ValueError(f"not an integer: {cell!r}") from None

        values = self._convert(name, lambda c: np.array(c, dtype=np.int64), slow, rows)
        self._check(name, values, values >= minimum, f"must be >= {minimum}", rows)
        return values.astype(np.int64, copy=False)

    def seconds(self, name: str, *, signed: bool = False, rows: np.ndarray | None = None
                ) -> np.ndarray:
        """Column ``name`` (or its ``rows``) as float64 seconds: finite, ``>= 0`` unless
        ``signed``."""
        def slow(cell: str) -> float:
            try:
                return float(cell)
            except ValueError:
                raise ValueError(f"not a number: {cell!r}") from None

        values = self._convert(name, lambda c: np.array(c, dtype=np.float64), slow, rows)
        ok = np.isfinite(values) if signed else np.isfinite(values) & (values >= 0)
        self._check(name, values, ok, "must be a finite number" + ("" if signed else " >= 0"),
                    rows)
        return values.astype(np.float64, copy=False)

    def datetimes(self, name: str) -> np.ndarray:
        """Column ``name`` (``YYYY-MM-DD HH:MM:SS``) as float64 naive seconds."""
        def fast(cells: Sequence[str]) -> np.ndarray:
            if set(map(len, cells)) - {19}:
                raise ValueError("not all in YYYY-MM-DD HH:MM:SS form")
            stamps = np.array(cells, dtype="datetime64[s]")
            if np.isnat(stamps).any():
                raise ValueError("NaT")
            return stamps.astype(np.int64).astype(np.float64)

        return self._convert(name, fast, naive_seconds, None)

    def _check(self, name: str, values: np.ndarray, ok: np.ndarray, message: str,
               rows: np.ndarray | None) -> None:
        bad = np.flatnonzero(~ok)
        if bad.size:
            k = int(bad[0]) if rows is None else int(rows[int(bad[0])])
            fail(self.path, self.line_of(k), name, f"{message}: {self.raw(name)[k]!r}")


def naive_seconds(text: str) -> float:
    """Seconds since 1970-01-01 of ``YYYY-MM-DD[ T]HH:MM:SS`` read as a naive wall clock.

    Raises ``ValueError`` with a message fit for a user.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a datetime (YYYY-MM-DD HH:MM:SS): {text!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - _EPOCH).total_seconds()


@dataclass(slots=True)
class Columns:
    """Jobs as columns, on the source's time axis. A ``str`` in place of a list means
    "the same for every job"; ``time_limit_s`` ``None`` means "none for any job"."""

    submit: np.ndarray  # float64 seconds, source axis
    job_id: Sequence[str]
    duration: np.ndarray  # float64 seconds
    gpus: np.ndarray  # int64
    project: Sequence[str] | str = ""
    user: Sequence[str] | str = ""
    time_limit_s: Sequence[int | None] | None = None
    qos: Sequence[str] | str = ""

    @classmethod
    def concat(cls, parts: Sequence[Columns]) -> Columns:
        def texts(get: Callable[[Columns], Sequence[str] | str]) -> list[str]:
            out: list[str] = []
            for part in parts:
                value = get(part)
                out.extend(repeat(value, len(part.job_id)) if isinstance(value, str) else value)
            return out

        limits: list[int | None] = []
        for part in parts:
            limits.extend(part.time_limit_s or repeat(None, len(part.job_id)))
        return cls(np.concatenate([p.submit for p in parts] or [np.zeros(0)]),
                   texts(lambda p: p.job_id),
                   np.concatenate([p.duration for p in parts] or [np.zeros(0)]),
                   np.concatenate([p.gpus for p in parts] or [np.zeros(0, np.int64)]),
                   texts(lambda p: p.project), texts(lambda p: p.user),
                   limits if any(p.time_limit_s for p in parts) else None,
                   texts(lambda p: p.qos))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[float, str, float, int, str, str, int | None,
                                             str]]) -> Columns:
        """From ``(submit, job_id, duration, gpus, project, user, time_limit_s, qos)``."""
        cols = list(zip(*rows, strict=True))
        if not cols:
            return cls(np.zeros(0), [], np.zeros(0), np.zeros(0, np.int64))
        return cls(np.array(cols[0], np.float64), list(cols[1]), np.array(cols[2], np.float64),
                   np.array(cols[3], np.int64), list(cols[4]), list(cols[5]), list(cols[6]),
                   list(cols[7]))


@dataclass(frozen=True, slots=True)
class Selection:
    """The options every reader accepts (``load_trace(..., gpus_in=..., from_time=...)``).

    ``from_s``/``to_s`` (from ``from_time``/``to_time``) keep submits in ``[from, to)`` on
    calendar traces only; ``keep_cpu`` keeps jobs with 0 GPUs (``None``: reader's default).
    """

    gpus_in: frozenset[int] | None = None
    from_s: float | None = None
    to_s: float | None = None
    keep_cpu: bool | None = None

    @classmethod
    def pop(cls, opts: dict[str, object]) -> Selection:
        """Take the common options out of ``opts``, validating each."""
        gpus_in = opts.pop("gpus_in", None)
        gpus: frozenset[int] | None = None
        if gpus_in is not None:
            values: Iterable[object] = [gpus_in] if isinstance(gpus_in, int | str) or \
                not isinstance(gpus_in, Iterable) else gpus_in
            try:
                gpus = frozenset(_whole(v) for v in values)
            except (TypeError, ValueError):
                raise InputError(f"expected a set of whole GPU counts, got {gpus_in!r}",
                                 field="gpus_in") from None
        bounds: list[float | None] = []
        for key in ("from_time", "to_time"):
            value = opts.pop(key, None)
            if isinstance(value, datetime):
                value = value.isoformat()
            if value is None:
                bounds.append(None)
            elif isinstance(value, str):
                try:
                    bounds.append(naive_seconds(value))
                except ValueError as exc:
                    raise InputError(str(exc), field=key) from None
            else:
                raise InputError(f"expected a datetime string, got {value!r}", field=key)
        keep_cpu = opts.pop("keep_cpu", None)
        if keep_cpu is not None and not isinstance(keep_cpu, bool):
            raise InputError(f"expected true or false, got {keep_cpu!r}", field="keep_cpu")
        return cls(gpus, bounds[0], bounds[1], keep_cpu)


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(value)
    return int(value)


class NumberedIds(Sequence[str]):
    """Job ids ``<prefix><n>`` for rows ``n = 1, 2, …`` (zero-padded to ``width``), made
    only for the rows a selection keeps."""

    def __init__(self, prefix: str, width: int, rows: int) -> None:
        self.prefix, self.width, self.rows = prefix, width, rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self.rows))]
        if not -self.rows <= k < self.rows:
            raise IndexError(k)
        return f"{self.prefix}{k % self.rows + 1:0{self.width}d}"

    def take(self, index: np.ndarray) -> np.ndarray:
        return _objects([f"{self.prefix}{k + 1:0{self.width}d}" for k in index.tolist()])


def _take(values: Sequence[Any] | str | None, index: np.ndarray) -> Iterable[Any]:
    if values is None or isinstance(values, str):
        return repeat(values)
    return _objects(values)[index].tolist()  # type: ignore[no-any-return]


def _objects(values: Sequence[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def finish(name: str, source: str, cols: Columns, select: Selection, *,
           calendar_sep: str | None = None, keep_cpu: bool = True,
           cluster: ClusterHint | None = None,
           dropped: Mapping[str, int] | None = None) -> Trace:
    """Filter, sort by ``(submit, job_id)`` and shift ``cols`` so the first submit is 0.

    ``calendar_sep`` is ``" "`` or ``"T"`` for traces whose axis is naive calendar time
    (``Trace.origin`` is then written in that style), ``None`` for relative-time traces.
    """
    counts: Counter[str] = Counter(dropped or {})
    keep = np.ones(len(cols.job_id), dtype=bool)
    if calendar_sep is None and (select.from_s is not None or select.to_s is not None):
        raise InputError(f"trace {name!r} has no calendar times; use the workload "
                         "model's from_s/to_s window instead", field="from_time")

    def restrict(mask: np.ndarray, reason: str) -> None:
        nonlocal keep
        counts[reason] += int(np.count_nonzero(keep & ~mask))
        keep &= mask

    if not (keep_cpu if select.keep_cpu is None else select.keep_cpu):
        restrict(cols.gpus > 0, "0 GPUs (CPU-only)")
    if select.gpus_in is not None:
        restrict(np.isin(cols.gpus, list(select.gpus_in)), "GPU count not selected")
    if select.from_s is not None:
        restrict(cols.submit >= select.from_s, "outside the time window")
    if select.to_s is not None:
        restrict(cols.submit < select.to_s, "outside the time window")
    index = np.flatnonzero(keep)
    shift = float(cols.submit[index].min()) if index.size else 0.0
    submit = cols.submit[index] - shift
    ids = cols.job_id.take(index) if isinstance(cols.job_id, NumberedIds) \
        else _objects(cols.job_id)[index]
    order = np.lexsort((ids.astype(str), submit)) if ids.size else index
    index = index[order]
    with paused_gc():
        jobs = tuple(map(TraceJob, ids[order].tolist(), submit[order].tolist(),
                         cols.duration[index].tolist(), cols.gpus[index].tolist(),
                         _take(cols.project, index), _take(cols.user, index),
                         _take(cols.time_limit_s, index), _take(cols.qos, index)))
    origin: str | None = None
    if calendar_sep is not None and jobs:
        moment = datetime.fromtimestamp(shift, UTC).replace(tzinfo=None)
        origin = moment.isoformat(sep=calendar_sep,
                                  timespec="seconds" if not moment.microsecond else "auto")
    return Trace(name=name, source=source, jobs=jobs, origin=origin, shift_s=shift,
                 cluster=cluster,
                 dropped=tuple(sorted((k, v) for k, v in counts.items() if v)))

