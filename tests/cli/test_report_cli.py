"""``gefion report usage`` and the energy of ``gefion history``, as a user runs them: real
``gefion`` processes against a real server (a controller with its loop and its telemetry
sampler, uvicorn on 127.0.0.1)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest

from gefion.core.jobs import JobState
from tests.api.helpers import SCRIPT, Site, running_site
from tests.cli.test_jobs_cli import ok
from tests.conftest import GefionRunner


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    with running_site(loop=True) as s:
        monkeypatch.setenv("GEFION_SERVER", s.url)
        monkeypatch.setenv("GEFION_TOKEN", s.token)
        yield s


def test_report_usage_as_csv_json_and_table_and_history_with_energy(
        run_gefion: GefionRunner, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [site.submit_ok(SCRIPT, "-A", project)[0] for project in ("nlp", "bio")]
    ended = [site.wait(i, lambda r: r.state is JobState.COMPLETED, step=False) for i in ids]
    window = ("--from", "now-1hours", "--to", "now+1hours")
    body = json.loads(ok(run_gefion("report", "usage", *window, "--format", "json")))
    assert body["by"] == "project" and {r["project"] for r in body["rows"]} == {"nlp", "bio"}
    assert body["total"]["jobs"] == 2 and body["total"]["energy_kwh"] > 0
    table = list(csv.reader(io.StringIO(ok(run_gefion(
        "report", "usage", "--by", "qos", *window, "--format", "csv")))))
    assert table[0] == ["qos", "jobs", "gpu_hours", "raw_gpu_hours", "energy_kwh",
                        "unmeasured_gpu_hours"]
    assert [row[:2] for row in table[1:]] == [["normal", "2"]]
    shown = ok(run_gefion("report", "usage", "--by", "user", *window)).splitlines()
    assert shown[1].split()[:2] == ["USER", "JOBS"] and shown[-1].split()[:2] == ["TOTAL", "2"]
    history = json.loads(ok(run_gefion("history", "--json", "-S", "now-1hours")))
    by_id = {j["id"]: j for j in history}
    for row in ended:
        job = by_id[row.id]
        assert row.energy_j is not None and job["energy_j"] == row.energy_j
        assert job["energy_kwh"] == round(row.energy_j / 3.6e6, 6)
        assert job["gpu_hours"] == round(row.gpu_s / 3600, 6)
    assert "ENERGY(kWh)" in ok(run_gefion("history", "-S", "now-1hours")).splitlines()[0]
    # a member of bio gets bio's usage alone, and no word of nlp's
    monkeypatch.setenv("GEFION_TOKEN", site.token_for("cid", projects={"bio": "member"}))
    mine = json.loads(ok(run_gefion("report", "usage", *window, "--format", "json")))
    assert [r["project"] for r in mine["rows"]] == ["bio"]
    refused = run_gefion("report", "usage", "-A", "nlp", *window)
    assert refused.returncode == 2 and "no project 'nlp'" in refused.stderr
    bad = run_gefion("report", "usage", "--by", "colour")
    assert bad.returncode == 2 and "--by" in bad.stderr
