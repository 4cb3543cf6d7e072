"""``#SBATCH`` directives: checking a batch script and taking its options out, as sbatch does.

Script checks, in sbatch's order, each refusing with sbatch's own words: the script is not
empty, not only white space, starts with ``#!`` (line 1), holds no NUL byte and no DOS line
break (``\\r\\n``, at the line where the first one is).

Directive rules (sbatch's ``_opt_batch_script`` and ``get_argument``):

- a directive is a line that begins with ``#SBATCH``, exactly: case-sensitive, in the first
  column (``# SBATCH`` and ``  #SBATCH`` are comments);
- directives are read only up to the first command: the first line that is neither blank
  nor a comment ends them; later ``#SBATCH`` lines are comments;
- one line may hold several options; white space separates them, single or double quotes
  group (``--comment="two words"``), a backslash makes the next character literal, and an
  unquoted, unescaped ``#`` starts a comment that ends the line (even mid-word);
- an unmatched quote is refused; so is a ``hetjob``/``packjob`` separator, since Gefion
  runs no heterogeneous jobs.

Since Slurm quietly ignores the last two kinds of ``#SBATCH`` line, which are nearly always
mistakes, :func:`extract_directives` warns about them (an indented ``#SBATCH``, and one after
the first command) rather than drop them silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from gefion.slurm.errors import Diagnostic, SbatchError

MAGIC = "#SBATCH"

SHEBANG_MESSAGE = ("This does not look like a batch script. The first line must start with #! "
                   "followed by the path to an interpreter. For instance: #!/bin/sh")
DOS_MESSAGE = ("Batch script contains DOS line breaks (\\r\\n) instead of expected UNIX line "
               "breaks (\\n).")

_HETJOB = frozenset({"hetjob", "packjob"})
#: What makes a directive line more than words split at white space.
_SPECIAL = ("\\", '"', "'", "#")


@dataclass(frozen=True, slots=True)
class Token:
    """One word of an ``#SBATCH`` line (or of the command line, where ``line`` is None)."""

    text: str
    line: int | None


def check_script(text: str, *, source: str) -> None:
    """Refuse, as sbatch does, a script it would not submit; see the module docstring."""
    if not text:
        raise SbatchError("Batch script is empty!", source=source)
    if text.isspace():
        raise SbatchError("Batch script contains only whitespace!", source=source)
    if not text.startswith("#!"):
        raise SbatchError(SHEBANG_MESSAGE, source=source, line=1)
    if "\0" in text:
        raise SbatchError("The Slurm controller does not allow scripts that contain a NULL "
                          "character '\\0'.", source=source,
                          line=text.count("\n", 0, text.index("\0")) + 1)
    if "\r\n" in text:
        raise SbatchError(DOS_MESSAGE, source=source,
                          line=text.count("\n", 0, text.index("\r\n")) + 1)


def wrap_command(command: str) -> str:
    """The script ``sbatch --wrap`` makes of ``command`` (Slurm's ``script_wrap``)."""
    return f"#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{command}\n"


def split_directive(text: str, *, source: str, line: int) -> list[str]:
    """The option words of what follows ``#SBATCH`` on one line (quotes, escapes, ``#``)."""
    if not any(special in text for special in _SPECIAL):
        return text.split()  # the common line: words and white space (str.isspace's)
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 < len(text):
                word.append(text[i + 1])
            in_word = True
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            else:
                word.append(ch)
        elif ch in "\"'":
            quote, in_word = ch, True
        elif ch == "#":
            break
        elif ch.isspace():
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        else:
            word.append(ch)
            in_word = True
        i += 1
    if quote:
        raise SbatchError(f"unmatched {quote} in {MAGIC}{text}", source=source, line=line)
    if in_word:
        words.append("".join(word))
    return words


def extract_directives(text: str, *, source: str) -> tuple[tuple[Token, ...],
                                                            tuple[Diagnostic, ...]]:
    """The option words of ``text``'s directives, each with its line, and warnings about
    ``#SBATCH`` lines that are ignored. ``text`` should have passed :func:`check_script`."""
    tokens: list[Token] = []
    warnings: list[Diagnostic] = []
    in_header = True
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.lstrip()
        if in_header and line.startswith(MAGIC):
            for word in split_directive(line[len(MAGIC):], source=source, line=number):
                if word.lower() in _HETJOB:
                    raise SbatchError(f"heterogeneous jobs ({MAGIC} {word}) are not supported",
                                      source=source, line=number)
                tokens.append(Token(word, number))
            continue
        if stripped.startswith(MAGIC):
            why = ("comes after the first command" if not in_header else
                   f"is indented; only a {MAGIC} in the first column is a directive")
            warnings.append(Diagnostic(source, number, MAGIC,
                                       f"ignored, as sbatch ignores it: this line {why}"))
        elif stripped and not stripped.startswith("#"):
            in_header = False
    return tuple(tokens), tuple(warnings)
