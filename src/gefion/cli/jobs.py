"""The job commands, clients of a running server (``gefion up``): ``submit``, ``queue``,
``cancel``, ``hold``, ``release``, ``show``, ``nodes``, ``logs``, ``history``.

They speak to ``--server`` (else ``$GEFION_SERVER``, else http://127.0.0.1:8642) through
:class:`gefion.client.Client`, with the API token of ``--token``, else the one
:mod:`gefion.credentials` finds (``$GEFION_TOKEN``, ``gefion login``'s, the site admin's),
and look like their Slurm namesakes (sbatch, squeue, scancel, scontrol hold/release/show
job, sinfo, sacct). Every listing has ``--json``. A refusal is
``error: <detail>`` (with ``file:line`` when the server names them) and exit status 2, by
the central handler of :mod:`gefion.cli.errors` (``ApiError`` is a ``GefionError``).

Start-up stays light: only typer is imported here; httpx, Rich and the sbatch option table
are imported by the command that uses them. ``gefion queue`` is normally answered before
any of this is imported, by :mod:`gefion.cli.fastqueue`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gefion.cli.errors import EXIT_INPUT_ERROR
from gefion.core.errors import InputError

if TYPE_CHECKING:
    from rich.table import Table

    from gefion.client import Client, JobInfo

ServerOption = Annotated[str | None, typer.Option(
    "--server", envvar="GEFION_SERVER", metavar="URL", show_default=False,
    help="The Gefion server [default: $GEFION_SERVER, else http://127.0.0.1:8642].")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", metavar="TOKEN", show_default=False,
    help="API token (default: $GEFION_TOKEN, else ~/.config/gefion/token from gefion "
         "login, else the site's admin.token if readable). Prefer those: a command line "
         "is visible to other users.")]
ListOption = list[str] | None


def _client(server: str | None, token: str | None = None) -> Client:
    from gefion.client import Client

    return Client(server, token=token)


def _echo_json(obj: object) -> None:
    import json

    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))


def _print(*renderables: Any) -> None:
    from rich.console import Console

    Console().print(*renderables)


def _table(*columns: str, right: Iterable[str] = (), wrap: Iterable[str] = ()) -> Table:
    """A plain table like Slurm's (no rules, one space apart); only ``wrap`` columns may
    fold when the terminal is narrow, the others keep their cells whole."""
    from rich.table import Table

    right, wrap = set(right), set(wrap)
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left",
                         no_wrap=column not in wrap, overflow="fold")
    return table


def _text(value: object) -> Any:
    """A cell for user text: Rich must not read ``[...]`` in it as markup."""
    from rich.text import Text

    return Text("" if value is None else str(value))


def clock(seconds: float | None) -> str:
    """Elapsed time as squeue and sacct print it: ``0:05``, ``1:02:03``, ``2-01:02:03``."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    days, s = divmod(s, 86_400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{s:02d}"
    return f"{hours}:{minutes:02d}:{s:02d}" if hours else f"{minutes}:{s:02d}"


def when(ts: float | None) -> str:
    """A time as Slurm prints one, local: ``2025-05-01T12:00:00``; ``N/A`` if none."""
    import time

    return "N/A" if ts is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))


# -- submit -------------------------------------------------------------------------------

def split_submit_args(words: list[str]) -> tuple[list[str], str | None, list[str]]:
    """sbatch's command line → (flags, script path, script arguments): the first word that
    is not an option or an option's value is the script; everything after it is its own."""
    from gefion.slurm.options import OPTIONS, Arg

    takes_value = {f"--{o.long}" for o in OPTIONS if o.arg is Arg.REQUIRED} | {"--server",
                                                                              "--token"}
    short_value = {o.short for o in OPTIONS if o.short and o.arg is Arg.REQUIRED}
    flags: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-") or word == "-":
            break
        flags.append(word)
        if word.startswith("--"):
            needs_next = "=" not in word and word in takes_value
        else:  # -N 2, -N2, -HN 2: a value-taking letter swallows the rest or the next word
            letters = word[1:]
            at = next((k for k, c in enumerate(letters) if c in short_value), None)
            needs_next = at is not None and at == len(letters) - 1
        if needs_next and i + 1 < len(words):
            flags.append(words[i + 1])
            i += 1
        i += 1
    if i >= len(words):
        return flags, None, []
    return flags, words[i], words[i + 1:]


def _take_cli_options(flags: list[str]) -> tuple[list[str], dict[str, str], bool]:
    """``--server``, ``--token`` and ``--json`` among the sbatch flags: ours, not sbatch's.
    (remaining flags, {"server": ..., "token": ...} as given, --json given)."""
    rest: list[str] = []
    given: dict[str, str] = {}
    as_json = False
    words = iter(flags)
    for word in words:
        name, eq, value = word.partition("=")
        if name in ("--server", "--token"):
            found = value if eq else next(words, None)
            if found is not None:
                given[name[2:]] = found
        elif word == "--json":
            as_json = True
        else:
            rest.append(word)
    return rest, given, as_json


def _read_script(path: str | None, flags: list[str]) -> tuple[str | None, str]:
    if path is None:
        if any(f == "--wrap" or f.startswith("--wrap=") for f in flags):
            return None, "<wrap>"
        text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
        if not text:  # sbatch reads the script from stdin; there is none
            raise InputError("no batch script: give a script file, --wrap, or a script "
                             "on stdin", source="<command line>")
        return text, "<stdin>"
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except UnicodeDecodeError:
        raise InputError("not a text (UTF-8) batch script", source=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a batch script", source=path) from None


def submit(ctx: typer.Context, server: ServerOption = None,
           json_output: JsonOption = False, token: TokenOption = None) -> None:
    """Submit a batch script, as sbatch: gefion submit [SBATCH FLAGS...] SCRIPT [ARGS...].

    Flags before the script are sbatch options (they override the script's #SBATCH lines);
    --wrap "CMD" stands for a script. Prints "Submitted batch job N" (--parsable: the id);
    --test-only checks the job and prints what it would be (with --json: as JSON).
    """
    flags, path, script_args = split_submit_args(list(ctx.args))
    flags, given, flag_json = _take_cli_options(flags)
    server, json_output = given.get("server") or server, json_output or flag_json
    token = given.get("token") or token
    script, source = _read_script(path, flags)
    # The job's environment is the caller's, less the token (it is stored with the job).
    env = {k: v for k, v in os.environ.items() if k != "GEFION_TOKEN"}
    kw: dict[str, Any] = {"argv": flags, "env": env, "cwd": os.getcwd(),
                          "source": source, "script_args": script_args}
    with _client(server, token) as client:
        if "--test-only" in flags:
            parsed = client.test_only(script, **kw)
            if json_output:
                _echo_json(parsed)
            else:
                _print_test_only(parsed)
            return
        result = client.submit(script, **kw)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if json_output:
        _echo_json({"job_ids": list(result.job_ids), "array_job_id": result.array_job_id,
                    "warnings": list(result.warnings)})
    elif "--parsable" in flags:
        typer.echo(str(result.job_id))
    else:
        typer.echo(f"Submitted batch job {result.job_id}")


def _print_test_only(parsed: dict[str, Any]) -> None:
    for w in parsed.get("warnings", ()):
        line = f":{w['line']}" if w.get("line") is not None else ""
        typer.echo(f"warning: {w.get('source')}{line}: {w.get('option')}: {w.get('message')}",
                   err=True)
    gpus, nodes = parsed.get("total_gpus"), parsed.get("nodes")
    typer.echo(f"job '{parsed['name']}' ({parsed['source']}) would be accepted: "
               f"{gpus} GPU(s){f' on {nodes} node(s)' if nodes else ''}, time limit "
               f"{parsed.get('time_limit') or 'default'}, project "
               f"{parsed.get('project') or 'default'}, qos {parsed.get('qos') or 'normal'}"
               + (f", array {parsed['array']}" if parsed.get("array") else ""))


# -- queue ----------------------------------------------------------------------------------

def queue(
    user: Annotated[ListOption, typer.Option("-u", "--user", metavar="USER[,USER...]",
                                             help="Only these users' jobs.")] = None,
    states: Annotated[ListOption, typer.Option("-t", "--states", metavar="STATE[,...]",
                                               help="Only jobs in these states.")] = None,
    project: Annotated[ListOption, typer.Option("-A", "--project", "--account",
                                                metavar="PROJECT[,...]",
                                                help="Only these projects' jobs.")] = None,
    jobs: Annotated[ListOption, typer.Option("-j", "--jobs", metavar="JOB[,...]",
                                             help="Only these jobs (or arrays).")] = None,
    start: Annotated[bool, typer.Option("--start", help="Add the (expected) start time "
                                                         "and order by it.")] = False,
    json_output: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Jobs not yet ended, as squeue: JOBID NAME USER PROJECT STATE TIME NODES REASON.

    The table (and the JSON) is rendered by the server, so that this command and the fast
    path of the console entry point (gefion.cli.fastqueue) print the same bytes, and 10,000
    jobs print in a blink rather than through a Rich table.
    """
    with _client(server, token) as client:
        sys.stdout.write(client.queue_rendered(
            users=user or (), states=states or (), projects=project or (), jobs=jobs or (),
            by_start=start, fmt="json" if json_output else "text"))


# -- cancel, hold, release ----------------------------------------------------------------

JobsArgument = Annotated[list[int], typer.Argument(metavar="JOB...", show_default=False)]


def _each(server: str | None, jobs: list[int], action: str, token: str | None) -> None:
    """``action`` on every job; a refusal is reported and the others still go on."""
    from gefion.client import ApiError, ServerUnreachable

    failed = False
    with _client(server, token) as client:
        for job_id in jobs:
            try:
                getattr(client, action)(job_id)
            except ServerUnreachable:
                raise
            except ApiError as exc:
                typer.echo(f"error: {exc}", err=True)
                failed = True
    if failed:
        raise typer.Exit(EXIT_INPUT_ERROR)


def cancel(jobs: JobsArgument, server: ServerOption = None, token: TokenOption = None) -> None:
    """Cancel jobs, as scancel: a pending job at once, a running one is signalled."""
    _each(server, jobs, "cancel", token)


def hold(jobs: JobsArgument, server: ServerOption = None, token: TokenOption = None) -> None:
    """Hold pending jobs: they are not started until released."""
    _each(server, jobs, "hold", token)


def release(jobs: JobsArgument, server: ServerOption = None,
            token: TokenOption = None) -> None:
    """Release held jobs."""
    _each(server, jobs, "release", token)


# -- show -----------------------------------------------------------------------------------

def show(job: Annotated[int, typer.Argument(metavar="JOB", show_default=False)],
         json_output: JsonOption = False, server: ServerOption = None,
         token: TokenOption = None) -> None:
    """Everything about a job, as scontrol show job: fields, priority factors (as sprio),
    and its events."""
    from dataclasses import asdict

    with _client(server, token) as client:
        info = client.job(job)
        events = client.events(job)
    if json_output:
        _echo_json({"job": asdict(info), "events": [asdict(e) for e in events]})
        return
    from rich.table import Table

    fields = Table.grid(padding=(0, 2))
    for key, value in _show_fields(info):
        fields.add_row(key, _text(value))
    parts: list[Any] = [fields]
    if info.priority:
        factors = _table(*(k.upper() for k in info.priority), right=[k.upper()
                                                                     for k in info.priority])
        factors.add_row(*(f"{v:g}" for v in info.priority.values()))
        parts += ["", "Priority factors", factors]
    timeline = _table("TIME", "EVENT", "DETAIL", wrap=("DETAIL",))
    for e in events:
        payload = {k: v for k, v in e.payload.items() if k != "spec"}
        timeline.add_row(when(e.ts), e.kind, _text(", ".join(f"{k}={v}" for k, v in
                                                             payload.items() if v is not None)))
    parts += ["", "Events", timeline]
    _print(*parts)


def _show_fields(j: JobInfo) -> Iterator[tuple[str, object]]:
    spec = j.spec
    yield "JobId", j.id
    if j.array_job_id is not None:
        yield "ArrayJobId", f"{j.array_job_id} (task {j.array_task_id})"
    yield "JobName", j.name
    yield "User", j.user
    yield "Project", j.project
    yield "QOS", j.qos
    yield "State", j.state + (" (held)" if j.held else "")
    if j.reason:
        yield "Reason", j.reason + (f": {j.reason_detail}" if j.reason_detail else "")
    if j.state == "PENDING":
        yield "ExpectedStart", when(j.eta_ts)
    yield "GPUs", j.gpus
    yield "Nodes", j.nodes if j.nodes is not None else "-"
    if j.allocation:
        yield "Allocation", "; ".join(f"{n}: GPUs {','.join(map(str, g))}"
                                      for n, g in j.allocation.items())
    yield "TimeLimit", clock(j.time_limit_s)
    yield "SubmitTime", when(j.submit_ts)
    yield "StartTime", when(j.start_ts)
    yield "EndTime", when(j.end_ts)
    yield "RunTime", clock(j.elapsed_s)
    yield "ExitCode", j.exit
    yield "Restarts", j.restarts
    for key, label in (("workdir", "WorkDir"), ("output", "StdOut"), ("error", "StdErr"),
                       ("partition", "Partition"), ("source", "Script")):
        if spec.get(key):
            yield label, spec[key]
    if spec.get("depends_on"):
        yield "Dependency", ",".join(map(str, spec["depends_on"]))


# -- nodes --------------------------------------------------------------------------------

def nodes(json_output: JsonOption = False, server: ServerOption = None,
          token: TokenOption = None) -> None:
    """The nodes, as sinfo: state (``maint`` in a maintenance window), GPUs allocated of
    all, scalable unit, the reservation open on it, drain reason or coming maintenance."""
    from dataclasses import asdict

    with _client(server, token) as client:
        listed = client.nodes()
    if json_output:
        _echo_json([asdict(n) for n in listed])
        return
    table = _table("NODE", "STATE", "GPUS", "ALLOC", "SU", "RESERVATION", "REASON",
                   right=("GPUS", "ALLOC"), wrap=("REASON",))
    for n in listed:
        reason = n.reason or ("" if n.maint_start_ts is None or n.state == "maint"
                              else f"maintenance from {when(n.maint_start_ts)}")
        table.add_row(_text(n.name), n.state, str(n.gpus), str(n.gpus_allocated), _text(n.su),
                      _text(n.reservation or ""), _text(reason))
    _print(table)


# -- logs -----------------------------------------------------------------------------------

def logs(
    job: Annotated[int, typer.Argument(metavar="JOB", show_default=False)],
    follow: Annotated[bool, typer.Option("-f", "--follow",
                                         help="Keep printing output until the job ends.")
                      ] = False,
    stderr: Annotated[bool, typer.Option("--stderr", help="The job's stderr, not stdout.")
                      ] = False,
    lines: Annotated[int | None, typer.Option("-n", "--lines", min=0, metavar="N",
                                              help="Only the last N lines.")] = None,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """A job's output (its --output file; --stderr: its --error file)."""
    stream = "stderr" if stderr else "stdout"
    with _client(server, token) as client:
        if not follow:
            sys.stdout.write(client.logs(job, stream, lines))
            return
        try:
            for chunk in client.follow_logs(job, stream, lines):
                sys.stdout.write(chunk)
                sys.stdout.flush()
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


# -- history --------------------------------------------------------------------------------

ENDED = "COMPLETED,FAILED,CANCELLED,TIMEOUT,PREEMPTED,NODE_FAIL"


def parse_when(text: str, *, field: str, now: float) -> float:
    """A time as sacct takes one: ``2025-05-01``, ``2025-05-01T13:00[:00]``, ``13:00[:00]``
    (today), ``now``, ``now-2hours`` (s, minutes, hours, days, weeks), or epoch seconds."""
    import datetime as dt
    import re

    t = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", t) and len(t) > 8:
        return float(t)
    m = re.fullmatch(r"now(?:([+-])(\d+)(s|seconds?|m|minutes?|h|hours?|d|days?|w|weeks?)?)?",
                     t, re.IGNORECASE)
    if m:
        unit = (m.group(3) or "s")[0].lower()
        step = int(m.group(2) or 0) * {"s": 1, "m": 60, "h": 3600, "d": 86_400,
                                       "w": 604_800}[unit]
        return now - step if m.group(1) == "-" else now + step
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", t):
        today = dt.datetime.fromtimestamp(now).date().isoformat()
        t = f"{today}T{t}"
    try:
        return dt.datetime.fromisoformat(t).timestamp()
    except ValueError:
        raise InputError(f"not a time: {text!r} (2025-05-01, 2025-05-01T13:00, 13:00, "
                         "now-2hours)", field=field) from None


def history(
    user: Annotated[str | None, typer.Option("-u", "--user", help="Only this user's jobs.")
                    ] = None,
    project: Annotated[str | None, typer.Option("-A", "--project", "--account",
                                                help="Only this project's jobs.")] = None,
    starttime: Annotated[str | None, typer.Option(
        "-S", "--starttime", metavar="TIME",
        help="Jobs that ended at or after TIME [default: 00:00 today, as sacct].")] = None,
    endtime: Annotated[str | None, typer.Option(
        "-E", "--endtime", metavar="TIME", help="Jobs submitted before TIME [default: now].")
    ] = None,
    state: Annotated[str, typer.Option("--state", "-s", metavar="STATE[,...]",
                                       help="Only jobs that ended in these states.")] = ENDED,
    json_output: JsonOption = False,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Ended jobs, as sacct: state, exit code (code:signal), elapsed time, GPUs, GPU-hours
    and measured energy (kWh) of all their runs."""
    import time

    now = time.time()
    midnight = time.mktime((*time.localtime(now)[:3], 0, 0, 0, 0, 0, -1))
    since = parse_when(starttime, field="--starttime", now=now) if starttime else midnight
    until = parse_when(endtime, field="--endtime", now=now) if endtime else None
    with _client(server, token) as client:
        jobs = [j for j in client.iter_jobs(states=state, user=user, project=project,
                                            signals=True)
                if (j.end_ts or 0) >= since and (until is None or j.submit_ts <= until)]
    if json_output:
        _echo_json([{"id": j.id, "name": j.name, "user": j.user, "project": j.project,
                     "state": j.state, "exit_code": j.exit_code, "signal": j.signal,
                     "exit": j.exit, "submit_ts": j.submit_ts, "start_ts": j.start_ts,
                     "end_ts": j.end_ts, "elapsed_s": j.elapsed_s, "gpus": j.gpus,
                     "gpu_hours": round(j.gpu_hours, 6), "energy_j": j.energy_j,
                     "energy_kwh": None if j.energy_kwh is None else round(j.energy_kwh, 6),
                     "restarts": j.restarts} for j in jobs])
        return
    table = _table("JOBID", "NAME", "USER", "PROJECT", "STATE", "EXITCODE", "END",
                   "ELAPSED", "GPUS", "GPU-HOURS", "ENERGY(kWh)",
                   right=("JOBID", "ELAPSED", "GPUS", "GPU-HOURS", "ENERGY(kWh)"),
                   wrap=("NAME",))
    for j in jobs:
        table.add_row(str(j.id), _text(j.name), _text(j.user), _text(j.project), j.state,
                      j.exit, when(j.end_ts), clock(j.elapsed_s), str(j.gpus or 0),
                      f"{j.gpu_hours:.2f}",
                      "-" if j.energy_kwh is None else f"{j.energy_kwh:.3f}")
    _print(table)


_RAW = {"allow_extra_args": True, "ignore_unknown_options": True,
        "allow_interspersed_args": False}


def register(app: typer.Typer) -> None:
    """Add the job commands to the ``gefion`` app."""
    app.command("submit", context_settings=_RAW,
                options_metavar="[--server URL] [--token TOKEN] [SBATCH FLAGS...] SCRIPT "
                                "[ARGS...]")(submit)
    app.command("queue")(queue)
    app.command("cancel")(cancel)
    app.command("hold")(hold)
    app.command("release")(release)
    app.command("show")(show)
    app.command("nodes")(nodes)
    app.command("logs")(logs)
    app.command("history")(history)
