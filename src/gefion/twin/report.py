"""The report of one twin run: ``report.md`` and three PNG plots, all deterministic.

::

    write_report(result, summary, "out/")   # out/report.md, out/allocation.png,
                                            # out/jct_cdf.png, out/project_share.png

- ``allocation.png``: GPU allocation (% of the cluster) and queue length (jobs) over time;
- ``jct_cdf.png``: the CDF of job completion time per job-size class (the classes of
  :data:`gefion.twin.metrics.SIZE_CLASSES`; log time axis);
- ``project_share.png``: each project's share of the GPU-hours used against its
  entitlement (the summary's ``per_project``).

The same inputs give byte-identical files: no dates or versions in the PNG metadata,
matplotlib's default style whatever the user's matplotlibrc says, and no wall-clock
figures in the Markdown. Plots use the object API (no pyplot), so nothing global changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from gefion.twin.result import SimResult

#: Above this many samples the time series are averaged into this many time bins.
MAX_POINTS = 2000
#: Projects drawn one by one in the share plot; the rest are summed as "others".
MAX_PROJECTS = 15
DPI = 110
PLOTS = ("allocation.png", "jct_cdf.png", "project_share.png")
LOG_TICKS = ((1.0, "1 s"), (10.0, "10 s"), (60.0, "1 min"), (600.0, "10 min"),
             (3600.0, "1 h"), (36_000.0, "10 h"), (86_400.0, "1 d"), (864_000.0, "10 d"),
             (8_640_000.0, "100 d"))


# -- numbers as people read them -----------------------------------------------------------

def fmt_duration(seconds: float | None) -> str:
    """``27,733 s (7.7 h)``: exact seconds for scripts, a human unit beside them."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    human = ""
    if abs(seconds) >= 86_400:
        human = f" ({seconds / 86_400:.1f} d)"
    elif abs(seconds) >= 3600:
        human = f" ({seconds / 3600:.1f} h)"
    elif abs(seconds) >= 60:
        human = f" ({seconds / 60:.1f} min)"
    return f"{seconds:,.0f} s{human}"


def fmt_short(seconds: float | None) -> str:
    """``45 s``, ``12.5 min``, ``7.7 h``, ``3.2 d``: for narrow tables."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if abs(seconds) < 60:
        return f"{seconds:.0f} s"
    if abs(seconds) < 3600:
        return f"{seconds / 60:.1f} min"
    if abs(seconds) < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def fmt_fraction(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def fmt_number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def summary_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(metric, value)`` rows for the headline numbers: the Rich table and report.md."""
    s = summary.get
    return [
        ("jobs", fmt_number(s("jobs"))),
        ("avg JCT", fmt_duration(s("avg_jct_s"))),
        ("p50 / p95 / p99 JCT", " / ".join(fmt_short(s(k)) for k in
                                           ("p50_jct_s", "p95_jct_s", "p99_jct_s"))),
        ("avg wait", fmt_duration(s("avg_wait_s"))),
        ("p50 / p95 / p99 wait", " / ".join(fmt_short(s(k)) for k in
                                            ("p50_wait_s", "p95_wait_s", "p99_wait_s"))),
        ("avg bounded slowdown (10 s)", fmt_number(s("avg_bsld"))),
        ("makespan", fmt_duration(s("makespan_s"))),
        ("GPU allocation", fmt_fraction(s("gpu_allocation"))),
        ("fragmentation", fmt_fraction(s("fragmentation"))),
        ("preemptions", fmt_number(s("preemptions"))),
        ("energy", f"{fmt_number(s('energy_kwh'))} kWh"),
    ]


# -- data for the plots --------------------------------------------------------------------

def step_series(time_s: np.ndarray, value: np.ndarray, end_s: float,
                max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """A step function (``value[i]`` holds from ``time_s[i]`` to the next sample) as at most
    ``max_points`` points: exact time-weighted means over equal bins when there are more."""
    if time_s.size <= max_points or end_s <= time_s[0]:
        return time_s, value
    widths = np.diff(np.append(time_s, max(end_s, time_s[-1])))
    area = np.concatenate(([0.0], np.cumsum(value * widths)))
    knots = np.append(time_s, time_s[-1] + widths[-1])
    edges = np.linspace(time_s[0], knots[-1], max_points + 1)
    cumulative = np.interp(edges, knots, area)  # exact: the integral is piecewise linear
    return edges[:-1], np.diff(cumulative) / np.diff(edges)


def time_unit(span_s: float) -> tuple[str, float]:
    if span_s >= 3 * 86_400:
        return "days", 86_400.0
    if span_s >= 3 * 3600:
        return "hours", 3600.0
    return "minutes", 60.0


def project_rows(summary: Mapping[str, Any]) -> list[tuple[str, float, float, float]]:
    """``(project, GPU-hours used, share of use, entitlement)`` from the summary's
    ``per_project``, largest use first (the entitlement is the fair-share shares over all
    shares, :mod:`gefion.twin.metrics`)."""
    rows = [(str(name), float(p.get("gpu_hours") or 0.0), float(p.get("share") or 0.0),
             float(p.get("entitlement") or 0.0))
            for name, p in (summary.get("per_project") or {}).items()]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def size_label(name: str) -> str:
    return f"{name} GPU" if name == "1" else f"{name} GPUs"


# -- plots ---------------------------------------------------------------------------------

@contextmanager
def figure(width_in: float, height_in: float) -> Iterator[Figure]:
    import matplotlib.style
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"):
        fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
        yield fig


def save_png(fig: Figure, path: Path) -> Path:
    """Save without metadata that changes from run to run or machine to machine."""
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def plot_allocation(result: SimResult, path: Path) -> Path:
    samples = result.samples
    t = np.fromiter((x.time_s for x in samples), np.float64, len(samples))
    alloc = np.fromiter((x.allocated_gpus for x in samples), np.float64, len(samples))
    queue = np.fromiter((x.queue_len for x in samples), np.float64, len(samples))
    end_s = max(result.makespan_s, float(t[-1]) if t.size else 0.0)
    unit, scale = time_unit(end_s)
    with figure(9, 5.5) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True)
        if t.size:
            x, a = step_series(t, 100.0 * alloc / max(result.total_gpus, 1), end_s)
            top.step(x / scale, a, where="post", color="tab:blue", linewidth=0.9)
            x, q = step_series(t, queue, end_s)
            bottom.step(x / scale, q, where="post", color="tab:orange", linewidth=0.9)
        top.set_ylim(0, 105)
        top.set_ylabel("GPUs allocated (%)")
        top.set_title(f"GPU allocation and queue — {result.trace} on {result.cluster} "
                      f"({result.total_gpus:,} GPUs), policy {result.policy}")
        bottom.set_ylabel("queued jobs")
        bottom.set_xlabel(f"simulated time ({unit} from the first submit)")
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
        return save_png(fig, path)


def plot_jct_cdf(result: SimResult, path: Path) -> Path:
    from gefion.twin.metrics import SIZE_CLASSES, size_class

    groups: dict[str, list[float]] = {}
    for job in result.jobs:
        if math.isfinite(job.end_s):
            groups.setdefault(size_class(job.gpus), []).append(job.end_s - job.submit_s)
    low, high = math.inf, 0.0
    with figure(8, 5) as fig:
        ax = fig.subplots()
        for name, _, _ in SIZE_CLASSES:
            values = np.sort(np.maximum(np.array(groups.get(name, []), np.float64), 1.0))
            if values.size:
                ax.step(values, np.arange(1, values.size + 1) / values.size,
                        where="post", label=f"{size_label(name)} ({values.size:,} jobs)")
                low, high = min(low, values[0]), max(high, values[-1])
        ax.set_xscale("log")
        ticks = [(t, name) for t, name in LOG_TICKS if low / 3 <= t <= high * 3]
        if ticks:
            ax.set_xticks([t for t, _ in ticks], [name for _, name in ticks])
            ax.minorticks_off()
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("job completion time, submit to end (log scale)")
        ax.set_ylabel("fraction of jobs")
        ax.set_title(f"JCT by job size — {result.trace}, policy {result.policy}")
        ax.grid(True, alpha=0.3)
        if groups:
            ax.legend(loc="lower right")
        return save_png(fig, path)


def plot_project_share(rows: Sequence[tuple[str, float, float, float]], title: str,
                       path: Path) -> Path:
    shown = list(rows[:MAX_PROJECTS])
    rest = rows[MAX_PROJECTS:]
    if rest:
        shown.append((f"{len(rest)} others", sum(r[1] for r in rest),
                      sum(r[2] for r in rest), sum(r[3] for r in rest)))
    y = np.arange(len(shown))
    with figure(8, max(3.0, 0.35 * len(shown) + 1.5)) as fig:
        ax = fig.subplots()
        ax.barh(y - 0.2, [100 * r[2] for r in shown], height=0.4, label="share of GPU-hours used")
        ax.barh(y + 0.2, [100 * r[3] for r in shown], height=0.4, label="entitlement (fair share)")
        ax.set_yticks(y, [r[0] for r in shown])
        ax.invert_yaxis()
        ax.set_xlabel("share of the cluster (%)")
        ax.set_title(title)
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(loc="best")
        return save_png(fig, path)


# -- report.md -----------------------------------------------------------------------------

def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def render_markdown(result: SimResult, summary: Mapping[str, Any],
                    usage: Sequence[tuple[str, float, float, float]]) -> str:
    lines = [f"# Twin run: {result.trace} on {result.cluster}, policy {result.policy}", "",
             f"Seed {result.seed}, load factor {result.load:g}, {result.total_gpus:,} GPUs, "
             f"{len(result.jobs):,} jobs simulated, {result.events:,} events, "
             f"{result.cycles:,} scheduling cycles."]
    if result.dropped:
        lines.append("Left out of the run: " + ", ".join(
            f"{n:,} ({reason})" for reason, n in sorted(result.dropped.items())) + ".")
    lines += ["", "## Summary", "", *markdown_table(("metric", "value"), summary_rows(summary))]
    by_size = summary.get("by_size") or {}
    if by_size:
        lines += ["", "## By job size", "", *markdown_table(
            ("size class", "jobs", "avg JCT", "p99 JCT", "avg wait", "p99 wait", "avg bsld"),
            [(str(name), fmt_number(m.get("jobs")), fmt_duration(m.get("avg_jct_s")),
              fmt_duration(m.get("p99_jct_s")), fmt_duration(m.get("avg_wait_s")),
              fmt_duration(m.get("p99_wait_s")), fmt_number(m.get("avg_bsld")))
             for name, m in by_size.items() if m.get("jobs")])]
    per = summary.get("per_project") or {}
    lines += ["", "## Projects: GPU-hours used against entitlement", "",
              "Entitlement is the project's fair share of the machine: its shares over "
              "all shares (equal shares when the run was given no projects).", "", *markdown_table(
                  ("project", "GPU-hours", "share of use", "entitlement", "jobs", "avg wait",
                   "p99 wait"),
                  [(p, f"{h:,.1f}", fmt_fraction(u), fmt_fraction(e),
                    fmt_number((per.get(p) or {}).get("jobs")),
                    fmt_short((per.get(p) or {}).get("avg_wait_s")),
                    fmt_short((per.get(p) or {}).get("p99_wait_s")))
                   for p, h, u, e in usage])]
    lines += tenancy_markdown(summary)
    lines += ["", "## Plots", "",
              "![GPU allocation and queue length over time](allocation.png)", "",
              "![JCT CDF per job-size class](jct_cdf.png)", "",
              "![Per-project share of GPU-hours against entitlement](project_share.png)", ""]
    return "\n".join(lines)


def tenancy_markdown(summary: Mapping[str, Any]) -> list[str]:
    """The report's tenancy sections, for a run given one: the file, the sensitive
    projects' jobs against the others', and grant burn-down."""
    tenancy = summary.get("tenancy")
    if not tenancy:
        return []
    what = f"`{tenancy['file']}` (sha256 {str(tenancy['sha256'])[:12]})" \
        if tenancy.get("file") else "none (`--sensitive` only)"
    lines = ["", "## Tenancy", "", f"Tenancy file: {what}; sensitive projects: "
             f"{', '.join(tenancy.get('sensitive') or []) or 'none'}; reservations: "
             f"{', '.join(tenancy.get('reservations') or []) or 'none'}."]
    if tenancy.get("projects_not_in_trace"):
        lines.append("Projects named but without jobs in the trace: "
                     f"{', '.join(tenancy['projects_not_in_trace'])}.")
    groups = summary.get("sensitive")
    if groups:
        lines += ["", *markdown_table(
            ("jobs of", "jobs", "avg JCT", "avg wait", "p99 wait"),
            [(label, fmt_number(g.get("jobs")), fmt_short(g.get("avg_jct_s")),
              fmt_short(g.get("avg_wait_s")), fmt_short(g.get("p99_wait_s")))
             for label, g in (("sensitive projects", groups["jobs"]),
                              ("other projects", groups["other_jobs"]))])]
    grants = summary.get("grants") or {}
    if grants:
        lines += ["", "### Grants (GPU-hours)", "", *markdown_table(
            ("project", "granted", "charged", "left at the end", "unfunded", "exhausted at",
             "jobs held"),
            [(p, fmt_number(g["granted_gpu_hours"]), fmt_number(g["charged_gpu_hours"]),
              fmt_number(g["left_gpu_hours"]), fmt_number(g["unfunded_gpu_hours"]),
              fmt_duration(g["exhausted_at_s"]), fmt_number(g["held_jobs"]))
             for p, g in grants.items()])]
    return lines


def write_report(result: SimResult, summary: Mapping[str, Any], out_dir: str | Path
                 ) -> list[Path]:
    """Write ``report.md`` and the plots into ``out_dir`` (created); return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    usage = project_rows(summary)
    report = out / "report.md"
    report.write_text(render_markdown(result, summary, usage), encoding="utf-8")
    return [report, plot_allocation(result, out / PLOTS[0]), plot_jct_cdf(result, out / PLOTS[1]),
            plot_project_share(usage, f"GPU-hours used vs entitlement — {result.trace}, "
                                      f"policy {result.policy}", out / PLOTS[2])]
