"""``scontrol`` inside a job of the local executor: the two questions batch scripts ask.

    scontrol show hostnames [HOSTLIST]   one name per line (default: $SLURM_JOB_NODELIST)
    scontrol show job [JOB_ID]           the current job's record, from its environment

Anything else is refused with a message (exit 1): the local executor has no slurmctld to ask.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from gefion.core.errors import GefionError
from gefion.formats.hostlist import expand

USAGE = "usage: scontrol show hostnames [HOSTLIST] | scontrol show job [JOB_ID]"


def show_job(env: Mapping[str, str]) -> str:
    """A ``scontrol show job`` record of the current job, from what its environment knows."""
    def get(name: str) -> str:
        return env.get(name, "")

    lines = [
        f"JobId={get('SLURM_JOB_ID')} JobName={get('SLURM_JOB_NAME')}",
        f"   UserId={get('SLURM_JOB_USER')}({get('SLURM_JOB_UID')}) "
        f"GroupId=({get('SLURM_JOB_GID')})",
        f"   JobState=RUNNING Partition={get('SLURM_JOB_PARTITION')} "
        f"Account={get('SLURM_JOB_ACCOUNT')} QOS={get('SLURM_JOB_QOS')}",
        f"   StartTime={get('SLURM_JOB_START_TIME')} "
        f"EndTime={get('SLURM_JOB_END_TIME') or 'Unknown'}",
        f"   NodeList={get('SLURM_JOB_NODELIST')} NumNodes={get('SLURM_JOB_NUM_NODES')} "
        f"NumTasks={get('SLURM_NTASKS')} CPUs/Task={get('SLURM_CPUS_PER_TASK')}",
        f"   TRES=gres/gpu={get('SLURM_GPUS_ON_NODE') or 0} "
        f"GPUs={get('SLURM_JOB_GPUS') or '(null)'}",
        f"   WorkDir={get('SLURM_SUBMIT_DIR')}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    words = [a for a in args if a not in ("-o", "--oneliner")]
    try:
        if len(words) >= 2 and words[0] == "show" and words[1] in ("hostnames", "hostname"):
            if len(words) > 3:
                raise ValueError(f"show {words[1]} takes one hostlist\n{USAGE}")
            hostlist = words[2] if len(words) == 3 else env.get("SLURM_JOB_NODELIST", "")
            if not hostlist:
                raise ValueError("no hostlist given and SLURM_JOB_NODELIST is not set")
            print("\n".join(expand(hostlist)))
            return 0
        if len(words) >= 2 and words[0] == "show" and words[1] == "job":
            current = env.get("SLURM_JOB_ID", "")
            wanted = words[2] if len(words) > 2 else current
            if not current or wanted != current:
                raise ValueError(f"show job {wanted}: Gefion's local scontrol knows only the "
                                 "current job ($SLURM_JOB_ID); ask the Gefion controller "
                                 "(gefion CLI) about other jobs")
            print(show_job(env))
            return 0
        shown = " ".join(args) or "(nothing)"
        raise ValueError(f"'{shown}' is not supported by Gefion's local scontrol\n{USAGE}")
    except (ValueError, GefionError) as exc:
        print(f"scontrol: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
