"""The denial log on its own: the first refusal of a group at once, the rest counted into
one summary when the window closes (by itself, or on flush), memory bounded."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gefion.api.denials import DenialLog


class Sink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, payload: Mapping[str, Any], ts: float) -> None:
        self.events.append({**payload, "ts": ts})


def refuse(log: DenialLog, principal: str = "eve", reason: str = "forbidden",
           target: str | None = "node n1") -> bool:
    return log.record(principal=principal, reason=reason, status=403,
                      route="POST /v1/nodes/{name}/drain", target=target)


def test_the_first_is_written_at_once_the_rest_when_the_window_closes() -> None:
    sink = Sink()
    log = DenialLog(sink, lambda: 100.0, window_s=0.2)
    assert refuse(log) is True
    assert [e["target"] for e in sink.events] == ["node n1"]
    assert [refuse(log, target=f"node n{i}") for i in range(2, 9)] == [False] * 7
    assert len(sink.events) == 1
    deadline = time.monotonic() + 5
    while len(sink.events) < 2:  # the timer closes the window by itself
        assert time.monotonic() < deadline, sink.events
        time.sleep(0.05)
    summary = sink.events[1]
    assert (summary["principal"], summary["reason"], summary["suppressed"]) == \
        ("eve", "forbidden", 7)
    assert summary["targets"] == [f"node n{i}" for i in range(2, 7)]  # a sample of 5
    assert refuse(log) is True  # a new window
    log.close()


def test_groups_are_per_principal_and_reason_and_bounded() -> None:
    sink = Sink()
    log = DenialLog(sink, lambda: 1.0, window_s=60, max_groups=3)
    for name in ("a", "b", "c"):
        assert refuse(log, principal=name)
    assert refuse(log, principal="a", reason="not-visible")  # over the bound: overflow
    assert not refuse(log, principal="d")
    assert [(e["principal"], e["reason"]) for e in sink.events] == \
        [("a", "forbidden"), ("b", "forbidden"), ("c", "forbidden"),
         ("(overflow)", "overflow")]
    log.flush()
    assert sink.events[-1]["principal"] == "(overflow)" and sink.events[-1]["suppressed"] == 1


def test_a_store_that_fails_does_not_fail_the_refusal() -> None:
    def broken(payload: Mapping[str, Any], ts: float) -> None:
        raise RuntimeError("the database is gone")

    log = DenialLog(broken, lambda: 1.0)
    assert refuse(log) is True  # logged as a warning, not raised
