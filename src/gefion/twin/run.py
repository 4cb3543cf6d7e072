"""One twin run from plain options: the glue behind ``gefion twin run`` and ``compare``.

::

    options → policy → cluster → tenancy → trace (load_trace + apply_workload_model)
            → simulate → summarize

Cheap checks come first (load, seed, window, policy name, cluster, tenancy file), so bad
input fails
before a large trace is read. Everything here is deterministic: the same
:class:`RunOptions` give the same summary, in this process or in a worker of
:mod:`gefion.twin.compare`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gefion.core.errors import InputError

if TYPE_CHECKING:
    from gefion.core.policies import Policy
    from gefion.core.topology import Cluster
    from gefion.twin.result import SimResult
    from gefion.twin.tenancy import Tenancy
    from gefion.twin.traces import Trace

#: ``progress(done, total)`` as the engine reports it.
Progress = Callable[[float, float], None]

#: The job size at and above which the compare table shows a separate p99 wait: the jobs
#: a backfilling policy may starve (issue #3).
LARGE_JOB_GPUS = 64


def parse_list(text: str, field: str) -> list[str]:
    """``"a, b,c"`` → ``["a", "b", "c"]``; empty items and repeats are errors."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise InputError(f"expected a comma-separated list, got {text!r}", field=field)
    if len(set(items)) != len(items):
        raise InputError(f"lists an item twice: {text!r}", field=field)
    return items


def parse_gpus(text: str | None) -> tuple[int, ...] | None:
    """``--gpus 1,2,4,8`` → ``(1, 2, 4, 8)``."""
    if text is None:
        return None
    try:
        return tuple(int(item) for item in parse_list(text, "gpus"))
    except ValueError:
        raise InputError(f"expected whole GPU counts, got {text!r}", field="gpus") from None


def policy_settings(items: tuple[str, ...]) -> dict[str, Any]:
    """``--set`` items (``weights.starve_after_s=259200``, ``placement=first-fit``) as
    policy parameters: a value is JSON where it parses (numbers, ``null``, lists), else
    text; ``weights.NAME`` sets one weight. The policy checks names and values."""
    params: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key or key.count(".") > 1 or \
                ("." in key and not key.startswith("weights.")):
            raise InputError(f"expected NAME=VALUE or weights.NAME=VALUE, got {item!r}",
                             field="set")
        if key == "depth":
            raise InputError("set the depth with --depth", field="set")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text.strip()
        if key.startswith("weights."):
            params.setdefault("weights", {})[key.split(".", 1)[1]] = value
        else:
            params[key] = value
    return params


def parse_window(text: str | None, field_name: str) -> float | str | None:
    """A ``--from``/``--to`` bound: seconds on the trace's own axis (``86400``), or a naive
    datetime (``2017-11-06 00:00``) for traces with calendar times."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    try:
        seconds = float(text)
    except ValueError:
        from gefion.twin.traces._common import naive_seconds

        try:
            naive_seconds(text)
        except ValueError as exc:
            raise InputError(f"{exc}; or give seconds on the trace's axis",
                             field=field_name) from None
        return text
    if not math.isfinite(seconds):
        raise InputError(f"must be a finite number of seconds, got {text!r}", field=field_name)
    return seconds


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything one twin run depends on. Units: seconds, GPUs.

    ``window_from``/``window_to`` are ``--from``/``--to`` as given: seconds on the trace's
    axis (its first submit is 0) or naive datetimes (calendar traces only). ``gpus_in``
    keeps jobs of those GPU counts. ``depth`` is the policy's reservation depth (-1: unlimited).
    ``tenancy`` is the path of a tenancy file (:mod:`gefion.twin.tenancy`), read where the
    run happens; ``sensitive`` names projects marked sensitive on top of it. ``settings``
    are ``NAME=VALUE`` policy parameters (:func:`policy_settings`).
    """

    trace: str
    cluster: str = "gefion"
    policy: str = "gefion"
    load: float = 1.0
    seed: int = 0
    window_from: str | None = None
    window_to: str | None = None
    gpus_in: tuple[int, ...] | None = None
    traces: str | None = None
    depth: int | None = None
    check: bool = False
    max_events: int | None = None
    tenancy: str | None = None
    sensitive: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()  # --set NAME=VALUE: policy parameters

    def __post_init__(self) -> None:
        if not self.trace or not str(self.trace).strip():
            raise InputError("is required", field="trace")
        if isinstance(self.load, bool) or not isinstance(self.load, int | float) or \
                not math.isfinite(self.load) or self.load <= 0:
            raise InputError(f"must be a number > 0, got {self.load!r}", field="load")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"must be a whole number >= 0, got {self.seed!r}", field="seed")
        if self.depth is not None and self.depth < -1:
            raise InputError(f"must be >= 0 (or -1: unlimited), got {self.depth}",
                             field="depth")
        policy_settings(self.settings)  # the form; the policy checks names and values
        if self.tenancy is not None and not str(self.tenancy).strip():
            raise InputError("must name a file", field="tenancy")
        if any(not isinstance(p, str) or not p.strip() for p in self.sensitive) or \
                len(set(self.sensitive)) != len(self.sensitive):
            raise InputError(f"must be distinct project names, got {self.sensitive!r}",
                             field="sensitive")
        if self.gpus_in is not None and any(g < 0 for g in self.gpus_in):
            raise InputError("GPU counts must be >= 0", field="gpus")
        kinds = {type(parse_window(self.window_from, "from")),
                 type(parse_window(self.window_to, "to"))} - {type(None)}
        if len(kinds) > 1:
            raise InputError("give both bounds as seconds or both as datetimes", field="to")

    def with_(self, **changes: Any) -> RunOptions:
        """A copy with ``changes``, checked again."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A finished run: the engine's result, its summary, and where the time went (s)."""

    result: SimResult
    summary: dict[str, Any]
    timings_s: dict[str, float] = field(default_factory=dict)


def make_policy(options: RunOptions) -> Policy:
    from gefion.core.policies import get_policy

    params = policy_settings(options.settings)
    if options.depth is not None:
        params["depth"] = None if options.depth < 0 else options.depth  # < 0: unlimited
    return get_policy(options.policy, **params)


def make_cluster(options: RunOptions) -> Cluster:
    from gefion.core.topology import is_preset, preset

    if is_preset(options.cluster):
        return preset(options.cluster)  # without the file readers (and YAML) to import
    from gefion.formats.cluster import load_cluster

    return load_cluster(options.cluster)


def make_tenancy(options: RunOptions, cluster: Cluster) -> Tenancy | None:
    """The run's tenancy from ``tenancy`` and ``sensitive`` (None: neither given)."""
    if options.tenancy is None and not options.sensitive:
        return None
    from gefion.twin.tenancy import make_tenancy as build

    return build(options.tenancy, options.sensitive, cluster)


def make_trace(options: RunOptions) -> Trace:
    """The trace with the workload model applied (window, load factor, seed)."""
    from gefion.twin.traces import load_trace
    from gefion.twin.workload import apply_workload_model

    lo = parse_window(options.window_from, "from")
    hi = parse_window(options.window_to, "to")
    opts: dict[str, Any] = {}
    if options.gpus_in is not None:
        opts["gpus_in"] = set(options.gpus_in)
    if isinstance(lo, str) or isinstance(hi, str):  # a calendar window: the reader cuts it
        opts.update(from_time=lo, to_time=hi)
        lo = hi = None
    try:
        raw = load_trace(options.trace, traces=options.traces, **opts)
    except InputError as exc:
        if exc.field in ("from_time", "to_time") and "calendar" in exc.message:
            raise InputError(f"trace {options.trace!r} has no calendar times; give --from "
                             "and --to as seconds on the trace's axis (its first submit is 0)",
                             field="from") from None
        raise
    return apply_workload_model(raw, seed=options.seed, load=float(options.load),
                                from_s=lo if isinstance(lo, float) else None,
                                to_s=hi if isinstance(hi, float) else None)


def run_twin(options: RunOptions, *, progress: Progress | None = None,
             on_stage: Callable[[str], None] | None = None) -> RunOutcome:
    """Run the twin once for ``options`` and summarise the result. ``on_stage`` hears
    ``"trace"``, ``"simulate"`` and ``"summarize"`` as each begins (for a progress bar)."""
    stage = on_stage or (lambda _: None)
    from gefion.twin.engine import simulate
    from gefion.twin.metrics import summarize

    clock = time.perf_counter
    t0 = clock()
    policy = make_policy(options)
    cluster = make_cluster(options)
    tenancy = make_tenancy(options, cluster)
    t1 = clock()
    stage("trace")
    trace = make_trace(options)
    t2 = clock()
    stage("simulate")
    result = simulate(trace, cluster, policy, seed=options.seed,
                      check_invariants=options.check, progress=progress,
                      max_events=options.max_events, load=float(options.load),
                      **(tenancy.simulate_kwargs() if tenancy is not None else {}))
    t3 = clock()
    stage("summarize")
    summary = summarize(result)
    if tenancy is not None:
        from gefion.twin.tenancy import describe

        summary["tenancy"] = describe(tenancy, {job.project for job in trace.jobs})
    if options.settings:
        summary["policy_settings"] = policy_settings(options.settings)
    t4 = clock()
    return RunOutcome(result, summary, {"setup_s": t1 - t0, "trace_s": t2 - t1,
                                        "simulate_s": t3 - t2, "summarize_s": t4 - t3})
