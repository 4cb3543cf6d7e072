"""#SBATCH extraction: script checks, where directives count, and how a line splits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gefion.slurm.directives import (
    DOS_MESSAGE,
    SHEBANG_MESSAGE,
    check_script,
    extract_directives,
    split_directive,
    wrap_command,
)
from gefion.slurm.errors import SbatchError


@pytest.mark.parametrize(("text", "message", "line"), [
    pytest.param("", "Batch script is empty!", None, id="empty"),
    pytest.param(" \n\t\n", "Batch script contains only whitespace!", None, id="blank"),
    pytest.param("echo hi\n", SHEBANG_MESSAGE, 1, id="no-shebang"),
    pytest.param("\n#!/bin/sh\n", SHEBANG_MESSAGE, 1, id="shebang-not-first"),
    pytest.param(" #!/bin/sh\n", SHEBANG_MESSAGE, 1, id="indented-shebang"),
    pytest.param("#!/bin/sh\r\necho\r\n", DOS_MESSAGE, 1, id="crlf-first-line"),
    pytest.param("#!/bin/sh\necho\r\n", DOS_MESSAGE, 2, id="crlf-later-line"),
    pytest.param("#!/bin/sh\necho \0\n", "NULL character", 2, id="nul-byte"),
])
def test_check_script_refuses_as_sbatch(text: str, message: str, line: int | None) -> None:
    with pytest.raises(SbatchError) as info:
        check_script(text, source="job.sh")
    assert message in str(info.value)
    assert info.value.source == "job.sh" and info.value.line == line


def test_messages_are_slurms() -> None:
    assert SHEBANG_MESSAGE.startswith(
        "This does not look like a batch script. The first line must start with #! followed "
        "by the path to an interpreter.")
    assert DOS_MESSAGE == ("Batch script contains DOS line breaks (\\r\\n) instead of expected "
                           "UNIX line breaks (\\n).")


def test_a_lone_carriage_return_is_not_a_dos_line_break() -> None:
    check_script("#!/bin/sh\necho a\rb\n", source="job.sh")


@pytest.mark.parametrize(("text", "words"), [
    pytest.param(" -N 2 --time=5", ["-N", "2", "--time=5"], id="several-options"),
    pytest.param(" --time=5 # five minutes", ["--time=5"], id="comment-after-value"),
    pytest.param(" --comment=a#b --time=5", ["--comment=a"], id="hash-ends-line-mid-word"),
    pytest.param(' --comment="two words"', ["--comment=two words"], id="double-quotes"),
    pytest.param(" --comment='it''s'", ["--comment=its"], id="adjacent-quotes-join"),
    pytest.param(' -J "a # b"', ["-J", "a # b"], id="hash-inside-quotes"),
    pytest.param(" -J a\\ b", ["-J", "a b"], id="backslash-escapes-space"),
    pytest.param(" -J a\\#b", ["-J", "a#b"], id="backslash-escapes-hash"),
    pytest.param(' --comment="say \\"hi\\""', ['--comment=say "hi"'], id="escaped-quote"),
    pytest.param("\t-N\t2  ", ["-N", "2"], id="tabs"),
    pytest.param("", [], id="nothing"),
    pytest.param(" # just a comment", [], id="only-a-comment"),
])
def test_split_directive(text: str, words: list[str]) -> None:
    assert split_directive(text, source="job.sh", line=3) == words


@given(st.text(alphabet=st.sampled_from(["-", "=", "N", "t", "5", ":", " ", "\t", "\x0b",
                                          "\u00a0", "\u2003", "\x1c", "é"])))
def test_a_plain_line_splits_as_the_full_reader_splits_it(text: str) -> None:
    # A line without quotes, escapes or '#' takes the short path (str.split); ending it
    # with a comment takes the full reader, which must agree.
    assert split_directive(text, source="job.sh", line=3) == \
        split_directive(text + " # a comment", source="job.sh", line=3)


def test_unmatched_quote_is_refused_with_its_line() -> None:
    with pytest.raises(SbatchError) as info:
        split_directive(' --comment="open', source="job.sh", line=3)
    assert str(info.value).startswith("job.sh:3: unmatched \"")


def _words(text: str) -> list[tuple[str, int | None]]:
    tokens, _ = extract_directives(text, source="job.sh")
    return [(t.text, t.line) for t in tokens]


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param("#SBATCH -N 2\n#SBATCH -t 5\n", [("-N", 2), ("2", 2), ("-t", 3), ("5", 3)],
                 id="lines-kept"),
    pytest.param("\n# note\n#SBATCH -N 2\n", [("-N", 4), ("2", 4)],
                 id="blank-and-comment-lines-do-not-end-directives"),
    pytest.param("echo hi\n#SBATCH -N 2\n", [], id="after-first-command-ignored"),
    pytest.param("  echo hi\n#SBATCH -N 2\n", [], id="indented-command-ends-directives"),
    pytest.param("# SBATCH -N 2\n", [], id="space-after-hash-is-a-comment"),
    pytest.param("  #SBATCH -N 2\n", [], id="indented-is-a-comment"),
    pytest.param("#sbatch -N 2\n", [], id="case-sensitive"),
    pytest.param("##SBATCH -N 2\n", [], id="double-hash-is-a-comment"),
    pytest.param("#SBATCH -N 2 -t 5 --exclusive\n",
                 [("-N", 2), ("2", 2), ("-t", 2), ("5", 2), ("--exclusive", 2)],
                 id="several-on-one-line"),
])
def test_where_directives_count(body: str, expected: list[tuple[str, int]]) -> None:
    assert _words("#!/bin/bash\n" + body) == expected


@pytest.mark.parametrize(("body", "line", "why"), [
    pytest.param("echo\n#SBATCH -N 2\n", 3, "comes after the first command", id="after-command"),
    pytest.param("  #SBATCH -N 2\n", 2, "is indented", id="indented"),
])
def test_ignored_directives_are_warned_about(body: str, line: int, why: str) -> None:
    _, warnings = extract_directives("#!/bin/bash\n" + body, source="job.sh")
    assert [(w.line, w.option) for w in warnings] == [(line, "#SBATCH")]
    assert why in warnings[0].message and "ignored" in warnings[0].message


def test_plain_comments_are_not_warned_about() -> None:
    _, warnings = extract_directives("#!/bin/bash\n# SBATCH -N 2\n##SBATCH -N 3\n",
                                     source="job.sh")
    assert warnings == ()


@pytest.mark.parametrize("word", ["hetjob", "packjob"])
def test_heterogeneous_jobs_are_refused(word: str) -> None:
    with pytest.raises(SbatchError, match="heterogeneous jobs") as info:
        extract_directives(f"#!/bin/bash\n#SBATCH -N 1\n#SBATCH {word}\n", source="job.sh")
    assert info.value.line == 3


def test_wrap_command_is_slurms_script() -> None:
    assert wrap_command("hostname") == (
        "#!/bin/sh\n# This script was created by sbatch --wrap.\n\nhostname\n")
