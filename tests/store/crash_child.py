"""The process that test_crash kills: submits jobs from 4 threads until it is killed.

    python crash_child.py URL

Prints ``ready`` once the store is open, then one line per acknowledged submission: the ids
that ``submit`` returned (a line is written with one ``write`` call, so lines never mix).
"""

from __future__ import annotations

import os
import sys
import threading

from gefion.store import NewJob, Store


def main() -> None:
    store = Store.open(sys.argv[1])
    os.write(1, b"ready\n")

    def client(t: int) -> None:
        i = 0
        while True:
            n = 1 + i % 3  # single jobs and small arrays
            jobs = [NewJob(f"c{t}", "ana", "nlp", spec={"gpus": 1, "i": i},
                           array_task_id=k if n > 1 else None) for k in range(n)]
            ids = store.submit(jobs, ts=float(i), idempotency_key=f"{t}-{i}")
            os.write(1, (" ".join(map(str, ids)) + "\n").encode())
            i += 1

    threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
