"""Filename patterns of ``--output`` and ``--error``, expanded as Slurm expands them.

=========  ===================================================================
``%%``     a literal ``%``
``%A``     the array's master job id (the job id for a job that is no array)
``%a``     the array task id (Slurm's NO_VAL, 4294967294, for a job that is no array)
``%b``     the array task id modulo 10
``%j``     the job id
``%J``     jobid.stepid; a batch script is no step, so the job id
``%N``     the (first) node's short name
``%n``     the node's index within the job (0 for the batch script)
``%s``     the step: ``batch``
``%t``     the task rank (0 for the batch script)
``%u``     the user name
``%x``     the job name
=========  ===================================================================

A number between ``%`` and a numeric letter zero-pads it: ``%4j`` → ``0128``, at most 10
digits (``%12j`` pads to 10). Padding is ignored for the text fields (``%N %s %u %x``).

Quirks kept from Slurm's ``expand_stdio_fields`` so that Gefion writes the files Slurm
would: an unknown letter is left as is, ``%`` included (``%z`` stays ``%z``); a number
before an unknown letter loses the ``%`` and all but its last digit (``%3z`` → ``3z``), and
so does a zero-led pad under ten (``%05j`` → ``5j``); a lone ``%`` at the end disappears; a
pattern containing a backslash is not expanded at all, its backslashes removed
(``a\\%j`` → ``a%j``).

A relative result is relative to the job's working directory (``--chdir``); joining it is
the caller's business, as is creating the file.
"""

from __future__ import annotations

#: Slurm's defaults when ``--output`` is not given; ``--error`` defaults to the output.
DEFAULT_OUTPUT = "slurm-%j.out"
DEFAULT_ARRAY_OUTPUT = "slurm-%A_%a.out"

#: What ``%a`` prints for a job that is not an array: Slurm's NO_VAL (0xfffffffe).
NO_ARRAY_TASK = 4_294_967_294

_MAX_PAD = 10


def default_output(*, is_array: bool) -> str:
    """The pattern Slurm uses when ``--output`` is not given."""
    return DEFAULT_ARRAY_OUTPUT if is_array else DEFAULT_OUTPUT


def expand_pattern(pattern: str, *, job_id: int, name: str, user: str,
                   array_job_id: int | None = None, array_task_id: int | None = None,
                   node: str = "", node_id: int = 0) -> str:
    """``pattern`` with its ``%`` fields replaced (see the module docstring).

    ``job_id`` is this job's id; for an array task, ``array_job_id`` is the id of the array
    as a whole and ``array_task_id`` this task's index. ``node`` is the short name of the
    node running the batch script and ``node_id`` its index within the job.
    """
    if "\\" in pattern:
        return pattern.replace("\\", "")
    task = NO_ARRAY_TASK if array_task_id is None else array_task_id
    numbers = {
        "A": job_id if array_job_id is None else array_job_id,
        "a": task,
        "b": task % 10,
        "j": job_id,
        "J": job_id,
        "n": node_id,
        "t": 0,
    }
    texts = {"N": node, "s": "batch", "u": user, "x": name}
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < n and pattern[j].isdigit():
            j += 1
        digits, letter = pattern[i + 1:j], pattern[j] if j < n else ""
        # Slurm reads a pad of two or more digits worth less than 10 (``%05j``) one digit
        # at a time and so never reaches the letter: that too prints as the last digit.
        misread = len(digits) > 1 and int(digits) < 10
        if digits and (misread or (letter not in numbers and letter not in texts)):
            # Slurm drops the '%' and every digit but the last; the letter follows as text.
            out.append(digits[-1])
            i = j
            continue
        if letter == "%":
            out.append("%")
        elif letter in numbers:
            pad = min(int(digits), _MAX_PAD) if digits else 0
            out.append(f"{numbers[letter]:0{pad}d}")
        elif letter in texts:
            out.append(texts[letter])
        elif letter:
            out.append("%" + letter)
        i = j + 1
    return "".join(out)
