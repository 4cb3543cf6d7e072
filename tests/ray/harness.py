"""A controller on the Ray executor, driven over stdin/stdout: run inside the test's loopback
namespace (where the Ray cluster is), by :class:`tests.ray.conftest.RemoteController`.

    python -m tests.ray.harness DATA_DIR RAY_ADDRESS

Each request is one JSON line ``{"op": ..., ...}``; each answer one JSON line
``{"ok": value}`` or ``{"error": "message"}``. ``alive`` checks pids in this namespace
(the test's own process sees other pids).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gefion.controller.config import ControllerConfig
from gefion.controller.service import Controller
from gefion.controller.submission import SubmitRequest


def row_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "state": row.state.value, "allocation": [[n, list(g)] for n, g in
                                                                   row.allocation],
            "restarts": row.restarts, "exit_code": row.exit_code, "reason": row.reason,
            "start_ts": row.start_ts, "end_ts": row.end_ts, "submit_ts": row.submit_ts}


def main(data_dir: str, address: str) -> int:
    # Answers on a stdout of our own: Ray prints to fd 1 itself (a dead node, say).
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def answer(value: dict[str, Any]) -> None:
        answers.write(json.dumps(value) + "\n")
        answers.flush()

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("gefion.executor.ray").setLevel(logging.DEBUG)
    controller = Controller(ControllerConfig(
        data_dir=Path(data_dir), executor="ray", ray_address=address, kill_grace_s=1,
        refresh_s=0.5, node_name="harness"))
    controller.start()
    store = controller.store
    assert store is not None
    answer({"ok": {"nodes": list(controller.cluster.names)}})
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        try:
            if op == "submit":
                ids, _ = controller.submit(SubmitRequest(
                    user="root", cwd=request["cwd"], script=request["script"],
                    argv=request.get("argv", ()), env=request["env"]))
                value: Any = ids
            elif op == "job":
                value = row_json(controller.get_job(int(request["id"])))
            elif op == "events":
                value = [{"seq": e.seq, "ts": e.ts, "kind": e.kind, "job_id": e.job_id,
                          "node": e.node, "payload": e.payload}
                         for e in store.events_since(int(request.get("after", 0)),
                                                     limit=10_000)]
            elif op == "nodes":
                value = [asdict(n) for n in controller.nodes()]
            elif op == "cancel":
                value = row_json(controller.cancel(int(request["id"]), by="root"))
            elif op == "alive":
                value = [p for p in request["pids"] if os.path.exists(f"/proc/{p}")
                         and not _zombie(p)]
            elif op == "stop":
                controller.stop()
                answer({"ok": True})
                return 0
            else:
                raise ValueError(f"unknown op {op!r}")
            answer({"ok": value})
        except Exception as exc:
            answer({"error": f"{type(exc).__name__}: {exc}"})
    controller.stop()
    return 0


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].startswith("Z")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
