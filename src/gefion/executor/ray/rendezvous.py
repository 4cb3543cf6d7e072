"""The torchrun-style rendezvous variables of a gang: pure functions, standard library only
(``srun`` imports this module inside a job).

A gang's processes meet at ``MASTER_ADDR:MASTER_PORT`` — the first node's address and a
port free there when the job started. The batch script (on the first node) sees the
gang's shape; each task that ``srun`` starts sees its own rank too::

    variable            batch script                 srun task
    MASTER_ADDR         first node's address         (same)
    MASTER_PORT         a free port there            (same)
    NNODES              nodes of the job             nodes of the step
    NODE_RANK           0                            index of the task's node in the step
    WORLD_SIZE          tasks of the job (--ntasks)  tasks of the step
    LOCAL_WORLD_SIZE    tasks on the first node      tasks of the step on the task's node
    RANK, LOCAL_RANK    -                            SLURM_PROCID, SLURM_LOCALID
    GROUP_RANK          -                            NODE_RANK (torchrun's name)

``torch.distributed.init_process_group("gloo")`` (or ``"nccl"``) with the default
``env://`` method reads exactly these.
"""

from __future__ import annotations

from collections.abc import Sequence

from gefion.executor.env import tasks_per_node

TYPE_CHECKING = False  # not typing's: srun pays for every import
if TYPE_CHECKING:
    from gefion.executor.placement import TaskPlacement

#: Variables of the gang's rendezvous, as the batch script gets them.
BATCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NNODES", "NODE_RANK", "WORLD_SIZE",
                   "LOCAL_WORLD_SIZE")


def batch_rendezvous(*, master_addr: str, master_port: int, nnodes: int,
                     ntasks: int) -> dict[str, str]:
    """The rendezvous variables of the batch script, which runs on the first node."""
    return {"MASTER_ADDR": master_addr, "MASTER_PORT": str(master_port),
            "NNODES": str(nnodes), "NODE_RANK": "0", "WORLD_SIZE": str(ntasks),
            "LOCAL_WORLD_SIZE": str(tasks_per_node(ntasks, nnodes)[0])}


def task_rendezvous(step: Sequence[TaskPlacement], task: TaskPlacement) -> dict[str, str]:
    """The variables that differ per task of a step (MASTER_* come from the job)."""
    nnodes = len({t.node for t in step})
    local = sum(1 for t in step if t.node == task.node)
    return {"RANK": str(task.procid), "LOCAL_RANK": str(task.local_id),
            "WORLD_SIZE": str(len(step)), "LOCAL_WORLD_SIZE": str(local),
            "NODE_RANK": str(task.node_id), "GROUP_RANK": str(task.node_id),
            "NNODES": str(nnodes)}
