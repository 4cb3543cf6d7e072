"""Small builders for store tests."""

from __future__ import annotations

from typing import Any

from gefion.store import JobRow, NewJob, Store


def new_job(name: str = "train", user: str = "ana", project: str = "nlp",
            **kw: Any) -> NewJob:
    return NewJob(name=name, user=user, project=project,
                  spec={"gpus": 1, "time_limit_s": 600, "project": project}, **kw)


def all_jobs(store: Store) -> dict[int, JobRow]:
    """Every job, read page by page (keyset pagination)."""
    out: dict[int, JobRow] = {}
    after = 0
    while page := store.list_jobs(after_id=after, limit=500):
        out.update((j.id, j) for j in page)
        after = page[-1].id
    return out
