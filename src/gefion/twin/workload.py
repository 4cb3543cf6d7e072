"""The workload model of the digital twin: what a trace does not say, drawn reproducibly.

- **Time limits** (:class:`TimeLimitModel`). Users over-estimate. A job's accuracy
  ``a = runtime / limit`` is drawn uniformly from ``[accuracy_min, 1]`` (Mu'alem &
  Feitelson, "Utilization, predictability, workloads, and user runtime estimates in
  scheduling the IBM SP2 with backfilling", IEEE TPDS 12(6), 2001, found that ratio spread
  roughly uniformly); the limit ``runtime / a`` is then rounded UP to a "round" value
  (15 min, 30 min, 1 h, 2 h, 4 h, 8 h, 12 h, 24 h, 48 h, …), as users pick a few popular
  values (Tsafrir, Etsion & Feitelson, "Modeling user runtime estimates", JSSPP 2005, LNCS
  3834). A fraction ``p_site_max`` asks for the site maximum (ibid.: the maximum is among
  the most popular values). So by default a limit is never below the true runtime; a
  fraction ``underestimate`` (default 0) asks for less, and the twin kills those jobs as
  TIMEOUT. The default parameters are Gefion's choices, not a fit to a log.
- **Projects and users** (:class:`ProjectModel`) where the trace has none: each job's
  project is drawn from ``n_projects`` with Zipf weights ``1/k**zipf_s``, and its user from
  ``users_per_project`` users of that project, also Zipf.
- **Load and window**: keep submits in ``[from_s, to_s)``, shift the first to 0, then divide
  submit times by ``load`` (2.0 halves every inter-arrival time).
- **Synthetic workloads** (:func:`generate`): Poisson arrivals scaled to an offered load,
  a GPU-count mix of powers of two up to 1,024, log-normal (heavy-tailed) run times that
  grow with job size.

Every draw comes from ``numpy.random.default_rng((seed, stream))``, one stream per
attribute, so the same seed gives the same workload, and a job's drawn attributes do not
depend on the window chosen. Units: seconds, GPUs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import repeat

import numpy as np

from gefion.core.errors import InputError
from gefion.twin.gcpause import paused_gc
from gefion.twin.traces.model import Trace, TraceJob, shifted_origin

_MIN, _HOUR, _DAY = 60, 3600, 86400

#: The "round" limits users pick, seconds. Beyond the last: the next multiple of 7 days.
ROUND_LIMITS_S: tuple[int, ...] = (
    5 * _MIN, 10 * _MIN, 15 * _MIN, 20 * _MIN, 30 * _MIN, 45 * _MIN,
    1 * _HOUR, 90 * _MIN, 2 * _HOUR, 3 * _HOUR, 4 * _HOUR, 6 * _HOUR, 8 * _HOUR, 10 * _HOUR,
    12 * _HOUR, 18 * _HOUR, 24 * _HOUR, 36 * _HOUR, 48 * _HOUR, 72 * _HOUR,
    4 * _DAY, 5 * _DAY, 7 * _DAY, 10 * _DAY, 14 * _DAY, 21 * _DAY, 28 * _DAY,
)

#: GPUs per job → probability, for :func:`generate`. Up to 64 GPUs it follows the ITP
#: mix (83% 1-GPU, 10% 8-GPU; docs/traces.md), shifted toward larger jobs, with a tail to
#: 1,024 GPUs as in the Acme LLM clusters (max 1,024 GPUs, Hu et al., NSDI '24).
DEFAULT_GPU_MIX: Mapping[int, float] = {
    1: 0.60, 2: 0.06, 4: 0.08, 8: 0.16, 16: 0.04, 32: 0.03, 64: 0.015, 128: 0.008,
    256: 0.004, 512: 0.002, 1024: 0.001,
}

_STREAM_LIMITS, _STREAM_PROJECTS, _STREAM_SYNTH = 1, 2, 3


@dataclass(frozen=True, slots=True)
class TimeLimitModel:
    """How users choose time limits (see the module docstring). Units: seconds."""

    accuracy_min: float = 0.05  # runtime/limit ~ U[accuracy_min, 1]
    p_site_max: float = 0.10  # fraction asking for the site maximum
    site_max_s: int = 48 * _HOUR
    underestimate: float = 0.0  # fraction asking for less than their runtime (TIMEOUT)
    round_values_s: tuple[int, ...] = ROUND_LIMITS_S
    keep_trace_limits: bool = True  # a limit the trace recorded is kept as it is

    def __post_init__(self) -> None:
        if not 0 < self.accuracy_min <= 1:
            raise InputError(f"must be in (0, 1], got {self.accuracy_min}",
                             field="accuracy_min")
        for name in ("p_site_max", "underestimate"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(f"must be in [0, 1], got {getattr(self, name)}", field=name)
        if self.site_max_s < 1 or not self.round_values_s or min(self.round_values_s) < 1:
            raise InputError("limits must be whole seconds >= 1", field="time_limits")

    def draw(self, duration_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A limit (int64 seconds >= 1) for each true runtime in ``duration_s``."""
        grid = np.array(sorted(self.round_values_s), dtype=np.float64)
        n = duration_s.size
        accuracy = rng.uniform(self.accuracy_min, 1.0, n)
        site_max = rng.random(n) < self.p_site_max
        under = rng.random(n) < self.underestimate
        shrink = rng.uniform(0.5, 0.95, n)
        wanted = duration_s / accuracy
        slot = np.searchsorted(grid, wanted, side="left")
        week = 7.0 * _DAY
        beyond = np.maximum(grid[-1], np.ceil(wanted / week) * week)
        limit = np.where(slot < grid.size, grid[np.minimum(slot, grid.size - 1)], beyond)
        limit = np.where(site_max, np.maximum(limit, self.site_max_s), limit)
        # underestimators: the largest round value at or below runtime × U[0.5, 0.95]
        short = duration_s * shrink
        below = np.searchsorted(grid, short, side="right") - 1
        short_limit = np.where(below >= 0, grid[np.maximum(below, 0)], np.floor(short))
        under &= (short_limit >= 1) & (short_limit < duration_s)
        limit = np.where(under, short_limit, limit)
        return np.maximum(1, np.ceil(limit)).astype(np.int64)


@dataclass(frozen=True, slots=True)
class ProjectModel:
    """Projects and users for jobs whose trace has none: Zipf-weighted, ``1/k**zipf_s``."""

    n_projects: int = 20
    users_per_project: int = 8
    zipf_s: float = 1.0

    def __post_init__(self) -> None:
        if self.n_projects < 1 or self.users_per_project < 1:
            raise InputError("needs at least one project and one user per project",
                             field="projects")
        if not self.zipf_s >= 0:
            raise InputError(f"must be >= 0, got {self.zipf_s}", field="zipf_s")

    def project_names(self) -> list[str]:
        return [f"proj{k:02d}" for k in range(1, self.n_projects + 1)]

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """For ``n`` jobs: a project index in ``[0, n_projects)`` and a user index in
        ``[0, users_per_project)`` (1-based ``uNN`` names are made by the caller)."""
        return (rng.choice(self.n_projects, size=n, p=_zipf(self.n_projects, self.zipf_s)),
                rng.choice(self.users_per_project, size=n,
                           p=_zipf(self.users_per_project, self.zipf_s)))


def _zipf(n: int, s: float) -> np.ndarray:
    weights: np.ndarray = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return weights / float(weights.sum())


def _rng(seed: int, stream: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"must be a whole number >= 0, got {seed!r}", field="seed")
    return np.random.default_rng((int(seed), stream))


class _UserNames(dict[tuple[str, int], str]):
    """``(project, k)`` → ``"<project>-uNN"`` (1-based), each name made once."""

    def __missing__(self, key: tuple[str, int]) -> str:
        name = self[key] = f"{key[0]}-u{key[1] + 1:02d}"
        return name


def apply_workload_model(trace: Trace, *, seed: int, load: float = 1.0,
                         from_s: float | None = None, to_s: float | None = None,
                         projects: ProjectModel | None = None,
                         time_limits: TimeLimitModel | None = None) -> Trace:
    """``trace`` made ready to replay: every job has a project, a user and a time limit.

    ``from_s``/``to_s`` keep jobs submitted in ``[from_s, to_s)`` on the trace's axis; the
    result is shifted so its first submit is 0, then submit times are divided by ``load``.
    Projects and users are only filled where empty; time limits where the trace has none
    (or everywhere if ``time_limits.keep_trace_limits`` is false).
    """
    if not (isinstance(load, int | float) and math.isfinite(load) and load > 0):
        raise InputError(f"must be a number > 0, got {load!r}", field="load")
    projects = projects or ProjectModel()
    time_limits = time_limits or TimeLimitModel()
    jobs = trace.jobs
    n = len(jobs)
    duration = np.fromiter((j.duration_s for j in jobs), np.float64, n)
    limits = time_limits.draw(duration, _rng(seed, _STREAM_LIMITS)).tolist()
    project_ix, user_ix = projects.draw(n, _rng(seed, _STREAM_PROJECTS))
    names = np.array(projects.project_names(), dtype=object)[project_ix].tolist()
    users = user_ix.tolist()
    keep_given = time_limits.keep_trace_limits
    lo = -math.inf if from_s is None else from_s
    hi = math.inf if to_s is None else to_s
    keep = [i for i, j in enumerate(jobs) if lo <= j.submit_s < hi]
    first = jobs[keep[0]].submit_s if keep else 0.0
    out = []
    user_names = _UserNames()
    with paused_gc():
        for i in keep:
            job = jobs[i]
            project = job.project or names[i]
            out.append(TraceJob(
                job.job_id, (job.submit_s - first) / load, job.duration_s, job.gpus, project,
                job.user or user_names[project, users[i]],
                job.time_limit_s if job.time_limit_s is not None and keep_given
                else limits[i], job.qos))
    note = f"workload model seed={seed} load={load:g}"
    if from_s is not None or to_s is not None:
        note += f" window=[{from_s}, {to_s}) s"
    return replace(trace, source=f"{trace.source}; {note}", jobs=tuple(out),
                   origin=shifted_origin(trace.origin, first), shift_s=trace.shift_s + first)


def generate(n_jobs: int, seed: int, *, offered_gpus: float = 1146.0,
             gpu_mix: Mapping[int, float] | None = None, max_gpus: int | None = None,
             median_duration_s: float = 1800.0, duration_sigma: float = 2.0,
             size_exponent: float = 0.25, max_duration_s: float = 14 * _DAY,
             projects: ProjectModel | None = None,
             time_limits: TimeLimitModel | None = None) -> Trace:
    """A synthetic workload of ``n_jobs`` jobs, vectorised (1,000,000 jobs in seconds).

    - GPUs per job from ``gpu_mix`` (default :data:`DEFAULT_GPU_MIX`), sizes above
      ``max_gpus`` removed and the rest renormalised;
    - true run time log-normal: median ``median_duration_s × gpus**size_exponent`` seconds,
      log-space spread ``duration_sigma``, clipped to ``[1, max_duration_s]``, whole seconds
      (with the defaults a 1-GPU job has median 30 min and p99 ≈ 2 days);
    - Poisson arrivals, scaled so that the offered load ``Σ gpus × duration / span`` is
      ``offered_gpus`` (default 1,146: 75% of Gefion's 1,528 GPUs);
    - projects, users and time limits from the models (see the module docstring).
    """
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 0:
        raise InputError(f"must be a whole number >= 0, got {n_jobs!r}", field="n_jobs")
    if not offered_gpus > 0:
        raise InputError(f"must be > 0, got {offered_gpus}", field="offered_gpus")
    mix = {int(k): float(v) for k, v in (gpu_mix or DEFAULT_GPU_MIX).items()
           if max_gpus is None or k <= max_gpus}
    if not mix or any(k < 1 or v < 0 for k, v in mix.items()) or sum(mix.values()) <= 0:
        raise InputError("needs GPU counts >= 1 with weights >= 0 (and some within "
                         "max_gpus)", field="gpu_mix")
    projects = projects or ProjectModel()
    time_limits = time_limits or TimeLimitModel()
    rng = _rng(seed, _STREAM_SYNTH)
    sizes = np.array(sorted(mix), dtype=np.int64)
    weights = np.array([mix[k] for k in sizes.tolist()])
    gpus = rng.choice(sizes, size=n_jobs, p=weights / weights.sum())
    median = median_duration_s * gpus.astype(np.float64) ** size_exponent
    duration = np.clip(np.round(median * np.exp(duration_sigma * rng.standard_normal(n_jobs))),
                       1.0, max_duration_s)
    arrivals = np.cumsum(rng.exponential(1.0, n_jobs))
    span_s = float(np.dot(gpus, duration)) / offered_gpus
    submit = np.zeros(n_jobs)
    if n_jobs > 1:
        submit = np.round((arrivals - arrivals[0]) * (span_s / (arrivals[-1] - arrivals[0])),
                          3)
    limits = time_limits.draw(duration, _rng(seed, _STREAM_LIMITS))
    project_ix, user_ix = projects.draw(n_jobs, _rng(seed, _STREAM_PROJECTS))
    project_names = projects.project_names()
    user_names = _UserNames()
    table = np.array([[user_names[p, u] for u in range(projects.users_per_project)]
                      for p in project_names], dtype=object)
    id_of = f"g{{:0{max(6, len(str(max(n_jobs - 1, 0))))}d}}".format
    with paused_gc():
        jobs = tuple(map(TraceJob, map(id_of, range(n_jobs)), submit.tolist(),
                         duration.tolist(), gpus.tolist(),
                         np.array(project_names, dtype=object)[project_ix].tolist(),
                         table[project_ix, user_ix].tolist(), limits.tolist(),
                         repeat("")))
    return Trace(name="synthetic", source=(
        f"synthetic workload: {n_jobs} jobs, seed={seed}, offered {offered_gpus:g} GPUs, "
        f"median run {median_duration_s:g} s × gpus^{size_exponent:g}, "
        f"sigma {duration_sigma:g}"), jobs=jobs)
