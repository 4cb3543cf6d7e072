"""Finding the gangs of an earlier controller: every node's agent knows its parts; a gang's
placement group is ``gefion-<job>-<run>`` in the executor's namespace."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("gefion.executor.ray")

#: How long an agent has to describe its parts (seconds).
DESCRIBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FoundGang:
    """A gang the agents hold. ``ranks``: the node indices whose agents hold a part of it
    (a missing one was lost); ``ended``: its batch script has ended (rank 0 says)."""

    job_id: int
    run: str
    nodes: tuple[str, ...]
    created_ts: float
    ranks: frozenset[int]
    ended: bool
    pg: Any


def group_parts(parts: Iterable[Mapping[str, Any]]) -> dict[tuple[int, str], dict[int, Any]]:
    """(job id, run) → rank → the part's description, from every agent's ``describe()``."""
    out: dict[tuple[int, str], dict[int, Any]] = {}
    for part in parts:
        out.setdefault((int(part["job_id"]), str(part["run"])), {})[int(part["rank"])] = part
    return out


def find_gangs(ray: Any, agents: Mapping[str, Any], namespace: str) -> list[FoundGang]:
    """Every gang with a part on a live agent, the newest run of each job only (the parts of
    an older run, left by a controller that died mid-cleanup, are closed)."""
    refs = {node: agent.describe.remote() for node, agent in agents.items()}
    parts = []
    for node, ref in refs.items():
        try:
            parts.extend(ray.get(ref, timeout=DESCRIBE_TIMEOUT_S))
        except Exception as exc:  # the node is leaving: its parts count as lost
            log.warning("agent of %s did not describe its parts: %s", node,
                        type(exc).__name__)
    found: dict[int, FoundGang] = {}
    for (job_id, run), ranks in group_parts(parts).items():
        info = next(iter(ranks.values()))
        try:
            pg = ray.util.get_placement_group(f"gefion-{job_id}-{run}")
        except ValueError:
            pg = None
        gang = FoundGang(job_id, run, tuple(info["nodes"]),
                         min(float(p["created_ts"]) for p in ranks.values()),
                         frozenset(ranks), bool(ranks.get(0, {}).get("ended")), pg)
        older = found.get(job_id)
        if older is not None and older.created_ts > gang.created_ts:
            gang, older = older, gang
        if older is not None:
            for rank in older.ranks:
                agent = agents.get(older.nodes[rank])
                if agent is not None:
                    agent.close.remote(older.job_id, older.run)
        found[job_id] = gang
    return [found[job_id] for job_id in sorted(found)]
