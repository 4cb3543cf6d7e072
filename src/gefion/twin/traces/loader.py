"""Finding and loading traces: :func:`traces_dir`, :func:`list_traces`, :func:`load_trace`.

A trace reference is one of

- a named trace folder under the traces directory, optionally with a sub-selection:
  ``itp-elasticflow``, ``itp-elasticflow/cluster03``, ``philly-pollux/6214e9`` (or the
  path of such a folder, wherever it is);
- a path to a canonical CSV (see :mod:`.canonical`);
- a path to a ``sacct --parsable2`` dump (see :mod:`.sacct`), recognised by the ``|`` in
  its header line.

The traces directory is the explicit argument, else ``$GEFION_TRACES``, else
``../shared/traces`` beside the checkout (the folder holding ``pyproject.toml``), else
``../shared/traces`` from the working directory. Trace data is never copied into the repo.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gefion.core.errors import InputError
from gefion.twin.gcpause import paused_gc
from gefion.twin.traces import alibaba, canonical, itp, philly, sacct
from gefion.twin.traces._common import Selection
from gefion.twin.traces.model import Trace

ENV_VAR = "GEFION_TRACES"
COMMON_OPTIONS = frozenset({"gpus_in", "from_time", "to_time", "keep_cpu"})


@dataclass(frozen=True, slots=True)
class _Reader:
    summary: str
    options: frozenset[str]
    selections: Callable[[Path], tuple[str, ...]]
    read: Callable[..., Trace]


_READERS: Mapping[str, _Reader] = {
    itp.NAME: _Reader(itp.SUMMARY, itp.OPTIONS, itp.selections, itp.read),
    philly.NAME: _Reader(philly.SUMMARY, philly.OPTIONS, philly.selections, philly.read),
    alibaba.NAME: _Reader(alibaba.SUMMARY, alibaba.OPTIONS, alibaba.selections, alibaba.read),
}


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """A named trace Gefion can read; ``path`` is ``None`` when its folder is absent."""

    name: str
    summary: str
    selections: tuple[str, ...]
    path: Path | None


def _repo_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


def traces_dir(explicit: str | Path | None = None) -> Path:
    """The directory that holds the named trace folders (it may not exist).

    Order: ``explicit``, ``$GEFION_TRACES``, ``<repo root>/../shared/traces`` (the repo
    root is the first folder above this file holding ``pyproject.toml``), then
    ``<cwd>/../shared/traces``. When none of the last two exists, the first is returned.
    """
    if explicit is not None and str(explicit):
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    candidates: list[Path] = []
    root = _repo_root(Path(__file__).resolve().parent)
    if root is not None:
        candidates.append(root.parent / "shared" / "traces")
    candidates.append(Path.cwd().parent / "shared" / "traces")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def list_traces(traces: str | Path | None = None) -> tuple[TraceInfo, ...]:
    """Every named trace Gefion has a reader for, with its sub-selections where present."""
    base = traces_dir(traces)
    out = []
    for name, reader in _READERS.items():
        folder = base / name
        present = folder.is_dir()
        out.append(TraceInfo(name, reader.summary,
                             reader.selections(folder) if present else (),
                             folder if present else None))
    return tuple(out)


def _check_options(label: str, opts: Mapping[str, Any], accepted: frozenset[str]) -> None:
    for key in opts:
        if key not in accepted:
            raise InputError(f"unknown option for trace {label!r}; accepted: "
                             f"{', '.join(sorted(accepted))}", field=key)


def load_trace(ref: str | Path, *, traces: str | Path | None = None, **opts: Any) -> Trace:
    """Load a trace by name (``itp-elasticflow/cluster03``) or path (canonical CSV, sacct).

    ``opts`` accepted by every trace: ``gpus_in`` (GPU counts to keep), ``from_time`` and
    ``to_time`` (naive datetime strings; submit in ``[from, to)``; calendar traces only:
    ``philly-pollux`` and sacct dumps), ``keep_cpu`` (keep 0-GPU jobs). Reader-specific:
    ``fractional`` for ``alibaba-openb-2023`` (``"round_up"`` or ``"skip"``).
    Raises :class:`InputError` (field ``trace``) naming the known traces when ``ref`` is
    neither a known name nor a file.
    """
    options = dict(opts)
    text = str(ref).strip()
    path = Path(text).expanduser()
    if path.is_file():
        _check_options(text, options, COMMON_OPTIONS)
        select = Selection.pop(options)
        with paused_gc():
            return sacct.read(path, select) if sacct.is_sacct(path) else \
                canonical.read(path, select)
    base = traces_dir(traces)
    if path.is_dir() and path.name in _READERS:  # the path of a trace folder itself
        base, text = path.parent, path.name
    name, _, selection = text.strip("/").partition("/")
    reader = _READERS.get(name)
    folder = base / name
    if reader is None or not folder.is_dir():
        known = [info.name + (f" (selections: {', '.join(info.selections)})"
                              if info.selections else "")
                 for info in list_traces(base) if info.path is not None]
        raise InputError(
            f"no trace {text!r}: not a file, and not a trace folder in {base}; known: "
            f"{'; '.join(known) or 'none (set ' + ENV_VAR + ')'}; or give the path of a "
            "canonical CSV or a sacct --parsable2 dump", field="trace")
    _check_options(text, options, COMMON_OPTIONS | reader.options)
    select = Selection.pop(options)
    with paused_gc():
        return reader.read(folder, selection or None, select, **options)
