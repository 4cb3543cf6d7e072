"""parse_submission end to end: a table of #SBATCH scripts and flags, valid and refused."""

from __future__ import annotations

from typing import Any

import pytest

from gefion.core.jobs import Dependency, DependencyKind
from gefion.slurm import ArraySpec, SbatchError, Site, parse_submission
from gefion.slurm.directives import SHEBANG_MESSAGE
from gefion.slurm.errors import COMMAND_LINE
from gefion.slurm.values import ExportSpec, SignalSpec


def script(*directives: str, body: str = "srun python train.py\n") -> str:
    """A batch script: ``#!/bin/bash``, then ``directives`` (line 2 on), then ``body``."""
    return "#!/bin/bash\n" + "".join(d + "\n" for d in directives) + body


VALID: list[Any] = [
    pytest.param(["#SBATCH -J train"], [], {"name": "train"}, id="short-name"),
    pytest.param(["#SBATCH --job-name=train"], [], {"name": "train"}, id="long-name"),
    pytest.param([], [], {"name": "job.sh", "partition": "gpu", "output": "slurm-%j.out",
                          "error": "slurm-%j.out", "time_limit_s": None, "gpus": None},
                 id="defaults"),
    pytest.param(["#SBATCH -N 4 --gpus-per-node=8"], [],
                 {"nodes": 4, "gpus_per_node": 8, "total_gpus": 32}, id="nodes-and-gpn"),
    pytest.param(["#SBATCH -N 2-4"], [], {"nodes": 2}, id="node-range-takes-min"),
    pytest.param(["#SBATCH -G h100:4"], [], {"gpus": 4, "gpu_type": "h100"}, id="typed-gpus"),
    pytest.param(["#SBATCH --gpus=2,h100:2"], [], {"gpus": 4}, id="gpu-list-adds-up"),
    pytest.param(["#SBATCH --gres=gpu:h100:2 -N 3"], [],
                 {"gpus_per_node": 2, "total_gpus": 6, "gpu_type": "h100"}, id="gres-typed"),
    pytest.param(["#SBATCH --gres=gpu:4"], [], {"gpus_per_node": 4}, id="gres-count"),
    pytest.param(["#SBATCH --gres=gpu"], [], {"gpus_per_node": 1}, id="gres-count-defaults-1"),
    pytest.param(["#SBATCH --gres=gres/gpu:2,gpu:h100:1"], [], {"gpus_per_node": 3},
                 id="gres-list-and-prefix"),
    pytest.param(["#SBATCH --gres=none"], [], {"gpus_per_node": None}, id="gres-none"),
    pytest.param(["#SBATCH --gres=gpu:h100:2 --gpus-per-node=2"], [], {"gpus_per_node": 2},
                 id="gres-and-gpn-agreeing"),
    pytest.param(["#SBATCH -n 4 --gpus-per-task=2"], [],
                 {"ntasks": 4, "gpus_per_task": 2, "total_gpus": 8}, id="gpus-per-task"),
    pytest.param(["#SBATCH -t 1-00:00:00"], [], {"time_limit_s": 86_400}, id="time-days"),
    pytest.param(["#SBATCH --time=UNLIMITED"], [], {"time_limit_s": None}, id="time-unlimited"),
    pytest.param(["#SBATCH -A ml-team -q high -p gpu"], [],
                 {"project": "ml-team", "qos": "high", "partition": "gpu"},
                 id="account-qos-partition"),
    pytest.param(["#SBATCH --array=0-15:4%2"], [],
                 {"array": ArraySpec((0, 4, 8, 12), 2), "output": "slurm-%A_%a.out",
                  "error": "slurm-%A_%a.out"}, id="array-default-output"),
    pytest.param(["#SBATCH -d afterok:12:13,singleton"], [],
                 {"dependencies": (Dependency(DependencyKind.AFTEROK, "12"),
                                   Dependency(DependencyKind.AFTEROK, "13"),
                                   Dependency(DependencyKind.SINGLETON))}, id="dependencies"),
    pytest.param(["#SBATCH -o out-%j.log"], [], {"output": "out-%j.log", "error": "out-%j.log"},
                 id="error-defaults-to-output"),
    pytest.param(["#SBATCH -o o.log -e e.log"], [], {"output": "o.log", "error": "e.log"},
                 id="output-and-error"),
    pytest.param(["#SBATCH --error=none"], [], {"error": "/dev/null"}, id="error-none"),
    pytest.param(["#SBATCH -D /scratch/run"], [], {"chdir": "/scratch/run"}, id="chdir"),
    pytest.param(["#SBATCH --signal=B:USR1@90"], [],
                 {"signal": SignalSpec(10, 90, batch_only=True)}, id="signal-batch-time"),
    pytest.param(["#SBATCH --signal=SIGTERM"], [], {"signal": SignalSpec(15, 60)},
                 id="signal-default-time"),
    pytest.param(["#SBATCH --signal=12@0"], [], {"signal": SignalSpec(12, 0)},
                 id="signal-number"),
    pytest.param(["#SBATCH --exclusive"], [], {"exclusive": True}, id="exclusive"),
    pytest.param(["#SBATCH --reservation=maint"], [], {"reservation": "maint"},
                 id="reservation"),
    pytest.param(["#SBATCH --export=ALL,FOO=bar,HOME"], [],
                 {"export": ExportSpec(True, (("FOO", "bar"), ("HOME", None)))},
                 id="export-all-plus-list"),
    pytest.param(["#SBATCH --export=NONE"], [], {"export": ExportSpec(False)}, id="export-none"),
    pytest.param(["#SBATCH --requeue"], [], {"requeue": True}, id="requeue"),
    pytest.param(["#SBATCH --no-requeue"], [], {"requeue": False}, id="no-requeue"),
    pytest.param(["#SBATCH --mem=64G"], [], {"mem_mb": 65_536}, id="mem-gigabytes"),
    pytest.param(["#SBATCH --mem=1024"], [], {"mem_mb": 1_024}, id="mem-default-megabytes"),
    pytest.param(["#SBATCH --mem=1500K"], [], {"mem_mb": 2}, id="mem-kilobytes-round-up"),
    pytest.param(["#SBATCH --mem=2T"], [], {"mem_mb": 2_097_152}, id="mem-a-whole-node"),
    pytest.param(["#SBATCH --mem-per-gpu=80G -G 8"], [], {"mem_per_gpu_mb": 81_920},
                 id="mem-per-gpu"),
    pytest.param(["#SBATCH --ntasks-per-node=8 -c 14"], [],
                 {"ntasks_per_node": 8, "cpus_per_task": 14}, id="tasks-and-cpus-fill-a-node"),
    pytest.param(["#SBATCH -C 'h100&dgx'"], [], {"constraint": "h100&dgx"}, id="constraint"),
    pytest.param(["#SBATCH -x dgx[001-003],dgx009"], [],
                 {"exclude": ("dgx001", "dgx002", "dgx003", "dgx009")}, id="exclude-hostlist"),
    pytest.param(["#SBATCH --open-mode=append"], [], {"open_mode": "append"}, id="open-mode"),
    pytest.param(["#SBATCH --comment=\"a b\""], [], {"comment": "a b"}, id="comment-quoted"),
    pytest.param(["#SBATCH -H --parsable -W --test-only"], [],
                 {"hold": True, "parsable": True, "wait": True, "test_only": True},
                 id="cli-flags-in-script"),
    pytest.param(["#SBATCH --begin=now"], [], {"name": "job.sh"}, id="begin-now"),
    # Directive rules
    pytest.param(["#SBATCH -J a", "echo hi", "#SBATCH -J b"], [], {"name": "a"},
                 id="after-first-command-ignored"),
    pytest.param(["# SBATCH -J b"], [], {"name": "job.sh"}, id="hash-space-ignored"),
    pytest.param(["  #SBATCH -J b"], [], {"name": "job.sh"}, id="indented-ignored"),
    pytest.param(["#SBATCH -J a -t 10 -N 2"], [],
                 {"name": "a", "time_limit_s": 600, "nodes": 2}, id="several-per-line"),
    pytest.param(["#SBATCH -t 10 # ten minutes"], [], {"time_limit_s": 600},
                 id="comment-after-value"),
    pytest.param(["#SBATCH -J 'my job'"], [], {"name": "my job"}, id="quotes-with-spaces"),
    pytest.param(["#SBATCH -t 10", "#SBATCH -t 20"], [], {"time_limit_s": 1_200},
                 id="last-repetition-wins"),
    pytest.param(["#SBATCH -t 10 -J s"], ["-t", "30", "--job-name=c"],
                 {"time_limit_s": 1_800, "name": "c"}, id="cli-overrides-script"),
    pytest.param(["#SBATCH --requeue"], ["--no-requeue"], {"requeue": False},
                 id="cli-overrides-paired-flag"),
    pytest.param(["#SBATCH --time", "#SBATCH 15"], [], {"time_limit_s": 900},
                 id="value-on-next-directive-line"),
]


@pytest.mark.parametrize(("directives", "argv", "expected"), VALID)
def test_valid(directives: list[str], argv: list[str], expected: dict[str, object]) -> None:
    sub = parse_submission(script(*directives), source="job.sh", argv=argv)
    assert {k: getattr(sub, k) for k in expected} == expected


INVALID: list[Any] = [
    pytest.param(["#SBATCH -t soon"], 2, "--time", "invalid time limit 'soon'", id="bad-time"),
    pytest.param(["#SBATCH -N 1", "#SBATCH --array=9-1"], 3, "--array", "runs backwards",
                 id="bad-array"),
    pytest.param(["#SBATCH --array=0-2000"], 2, "--array", "MaxArraySize=1001",
                 id="array-above-max"),
    pytest.param(["#SBATCH --frobnicate"], 2, "--frobnicate", "is not an sbatch option",
                 id="unknown-option"),
    pytest.param(["#SBATCH -w dgx001"], 2, "-w", "does not support", id="unsupported-option"),
    pytest.param(["#SBATCH -J my job"], 2, None, "Invalid directive found in batch script: 'job'",
                 id="unquoted-space"),
    pytest.param(["#SBATCH --comment='open"], 2, None, "unmatched '", id="unmatched-quote"),
    pytest.param(["#SBATCH --time"], 2, "--time", "requires a value", id="missing-value"),
    pytest.param(["#SBATCH --wrap=hostname"], 2, "--wrap", "only valid on the command line",
                 id="wrap-in-script"),
    pytest.param(["#SBATCH -N 3-1"], 2, "--nodes", "maximum is below the minimum",
                 id="node-range-backwards"),
    pytest.param(["#SBATCH --mem=lots"], 2, "--mem", "invalid memory size 'lots'", id="bad-mem"),
    pytest.param(["#SBATCH --signal=WINCH"], 2, "--signal", "invalid signal 'WINCH'",
                 id="unknown-signal-name"),
    pytest.param(["#SBATCH --signal=USR1@soon"], 2, "--signal", "invalid signal time 'soon'",
                 id="bad-signal-time"),
    pytest.param(["#SBATCH --signal=99"], 2, "--signal", "Linux signals are 1-64",
                 id="signal-number-out-of-range"),
    pytest.param(["#SBATCH -d after:12"], 2, "--dependency", "unknown dependency type 'after'",
                 id="unsupported-dependency"),
    pytest.param(["#SBATCH --open-mode=rewrite"], 2, "--open-mode", "append or truncate",
                 id="bad-open-mode"),
    pytest.param(["#SBATCH --mail-type=SOMETIMES"], 2, "--mail-type", "invalid mail type",
                 id="bad-mail-type"),
    pytest.param(["#SBATCH --hint=fast"], 2, "--hint", "invalid hint 'fast'", id="bad-hint"),
    pytest.param(["#SBATCH --gpu-bind=nearest"], 2, "--gpu-bind", "invalid GPU binding",
                 id="bad-gpu-bind"),
    pytest.param(["#SBATCH --export=1BAD"], 2, "--export", "invalid --export item",
                 id="bad-export"),
    pytest.param(["#SBATCH -x dgx[3-1]"], 2, "--exclude", "runs backwards", id="bad-hostlist"),
    pytest.param(["#SBATCH -G h100:x"], 2, "--gpus", "invalid GPU count", id="bad-gpu-count"),
    pytest.param(["#SBATCH -c 0"], 2, "--cpus-per-task", "expected a whole number >= 1",
                 id="zero-cpus"),
]


@pytest.mark.parametrize(("directives", "line", "field", "why"), INVALID)
def test_invalid_directives_name_file_line_and_option(
        directives: list[str], line: int, field: str | None, why: str) -> None:
    with pytest.raises(SbatchError) as info:
        parse_submission(script(*directives), source="job.sh")
    err = info.value
    assert (err.source, err.line, err.field) == ("job.sh", line, field)
    assert why in str(err)
    assert str(err).startswith(f"job.sh:{line}: ")


def test_missing_shebang() -> None:
    with pytest.raises(SbatchError) as info:
        parse_submission("#SBATCH -N 1\nsrun x\n", source="job.sh")
    assert str(info.value) == f"job.sh:1: {SHEBANG_MESSAGE}"


def test_dos_line_breaks() -> None:
    with pytest.raises(SbatchError, match=r"DOS line breaks") as info:
        parse_submission("#!/bin/bash\r\n#SBATCH -N 1\r\n", source="job.sh")
    assert info.value.line == 1


def test_a_bad_flag_is_located_on_the_command_line() -> None:
    with pytest.raises(SbatchError) as info:
        parse_submission(script(), source="job.sh", argv=["--time=soon"])
    assert (info.value.source, info.value.line, info.value.field) == (COMMAND_LINE, None, "--time")


def test_a_bad_directive_is_refused_even_when_a_flag_overrides_it() -> None:
    with pytest.raises(SbatchError) as info:
        parse_submission(script("#SBATCH -t soon"), source="job.sh", argv=["-t", "5"])
    assert info.value.line == 2


def test_wrap_makes_the_script() -> None:
    sub = parse_submission(None, argv=["--wrap", "hostname", "-t", "5"])
    assert sub.script.startswith("#!/bin/sh\n") and sub.script.endswith("hostname\n")
    assert (sub.name, sub.time_limit_s) == ("wrap", 300)


def test_wrap_and_a_script_together_are_refused() -> None:
    with pytest.raises(SbatchError, match="not permitted with --wrap"):
        parse_submission(script(), argv=["--wrap=hostname"])


def test_no_script_and_no_wrap_is_refused() -> None:
    with pytest.raises(SbatchError, match="no batch script"):
        parse_submission(None)


def test_script_from_stdin_is_named_sbatch_as_slurm_does() -> None:
    assert parse_submission(script()).name == "sbatch"


def test_site_max_array_size_applies() -> None:
    site = Site(max_array_size=5000)
    assert parse_submission(script("#SBATCH -a 0-4999"), site=site).array is not None
    with pytest.raises(SbatchError, match="MaxArraySize=10"):
        parse_submission(script("#SBATCH -a 0-10"), site=Site(max_array_size=10))


def test_the_script_text_is_kept_whole() -> None:
    text = script("#SBATCH -N 1")
    assert parse_submission(text).script == text


def test_a_script_read_before_gives_the_same_answer_with_other_flags() -> None:
    # A script's directives are read once and kept (a sweep sends one script many times):
    # flags still override them, and each call gets its own flags' answer.
    text = script("#SBATCH -J sweep -t 10")
    first = parse_submission(text, source="job.sh", argv=["-t", "20"])
    again = parse_submission(text, source="job.sh", argv=["-J", "other"])
    assert (first.name, first.time_limit_s) == ("sweep", 1200)
    assert (again.name, again.time_limit_s) == ("other", 600)
    assert parse_submission(text, source="other.sh").warnings == ()


def test_a_refused_script_is_refused_every_time() -> None:
    text = script("#SBATCH -t soon")
    for _ in range(2):
        with pytest.raises(SbatchError) as info:
            parse_submission(text, source="job.sh")
        assert (info.value.source, info.value.line) == ("job.sh", 2)


def test_a_script_kept_for_one_site_is_read_again_for_another() -> None:
    text = script("#SBATCH -a 0-10")
    assert parse_submission(text).array is not None
    with pytest.raises(SbatchError, match="MaxArraySize=10"):
        parse_submission(text, site=Site(max_array_size=10))


def test_a_script_read_once_locates_errors_in_its_own_source() -> None:
    text = script("#SBATCH -t 5", "#SBATCH --mem=99T")
    for source in ("a.sh", "b.sh"):
        with pytest.raises(SbatchError) as info:
            parse_submission(text, source=source)
        assert (info.value.source, info.value.line) == (source, 3)


def test_a_sweep_that_varies_only_names_is_reviewed_once(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    # Review's verdict depends only on the options it reads: jobs of a sweep that differ
    # in name, output, comment or exported variables share it, with their own names.
    from gefion.slurm import parse

    calls: list[int] = []
    real = parse.review
    monkeypatch.setattr(parse, "review", lambda s, site: calls.append(1) or real(s, site))
    parse._reviewed.clear()
    text = script("#SBATCH -G 8 -t 1:00:00", "#SBATCH --mail-type=END")
    subs = [parse_submission(text, source="sweep.sh",
                             argv=[f"--job-name=s{i}", f"--output=out-{i}",
                                   f"--export=ALL,I={i}"])
            for i in range(5)]
    assert len(calls) == 1
    assert [s.name for s in subs] == [f"s{i}" for i in range(5)]
    assert [s.output for s in subs] == [f"out-{i}" for i in range(5)]
    assert {(w.line, w.message) for s in subs for w in s.warnings} == \
        {(3, subs[0].warnings[0].message)}
    # An option review reads is part of what is remembered: a new value is reviewed anew,
    # and a refusal is raised every time.
    parse_submission(text, source="sweep.sh", argv=["-J", "x", "--gpus-per-node=4"])
    assert len(calls) == 2
    for _ in range(2):
        with pytest.raises(SbatchError, match="GPUs per node"):
            parse_submission(text, source="sweep.sh", argv=["-J", "y", "--gpus-per-node=9"])
    assert len(calls) == 4
    # The same directive on another line is its own entry: warnings name their own line.
    moved = script("#SBATCH -G 8 -t 1:00:00", "", "#SBATCH --mail-type=END")
    assert [w.line for w in parse_submission(moved, source="sweep.sh").warnings] == [4]


@pytest.mark.parametrize(("directives", "argv", "other"), [
    (["#SBATCH -J base -o base.out -e base.err"], ["--job-name=mine"], ["-J", "theirs"]),
    (["#SBATCH -o base.out"], ["-o", "mine-%j.out"], ["-o", "theirs.out"]),
    (["#SBATCH -a 0-3%2 -t 5"], ["-Jmine"], ["-J", "theirs"]),
    (["#SBATCH --export=ALL,A=1"], ["--export=NONE", "--comment=c1"], ["--export=B=2"]),
    (["#SBATCH -D /scratch/a"], ["--chdir=/scratch/mine", "-e", "mine.err"], []),
    (["#SBATCH -G 8 --hold"], ["-J", "", "-t", "1:00"], ["-J", "x", "-t", "1:00"]),
    ([], ["--wrap=echo hi", "-J", "mine"], ["--wrap=echo hi", "-J", "theirs"]),
])
def test_a_sweep_parsed_once_gives_each_job_exactly_its_own_parse(
        directives: list[str], argv: list[str], other: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The parse of a script and its flags other than free text (name, output, error,
    comment, chdir, export) is kept; each job's free text is applied on top, and the
    answer equals a parse from scratch, defaults (error follows output, an array's output
    pattern, the script's name) included."""
    from gefion.slurm import parse

    text = script(*directives) if directives else None
    with monkeypatch.context() as m:  # from scratch: as a script too long to keep
        m.setattr(parse, "_CACHED_SCRIPT_CHARS", 0)
        cold = parse_submission(text, source="sweep.sh", argv=argv)
    parse._parsed.clear()
    parse_submission(text, source="sweep.sh", argv=other)  # another job of the sweep first
    warm = parse_submission(text, source="sweep.sh", argv=argv)
    assert warm == cold
    assert len(parse._parsed) == 1  # the second job was not parsed from scratch
