"""Telemetry through the API: a job's energy and power, the idle-GPU flag in the job, the
queue (JSON and table) and the metrics; ``GET /metrics`` parsed as Prometheus parses it,
its values those of the machine, and per-project usage only for who may see the project;
the machine's power in ``GET /v1/cluster``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gefion.api import metrics
from gefion.controller.gpureader import FakeGpuReader, GpuSample
from gefion.controller.telemetry import Sampler
from gefion.core.jobs import JobState
from gefion.twin.power import DGX_H100
from tests.api.helpers import NODE, SCRIPT, Site, running_site

SLEEPER = "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --time=5\nsleep 30\n"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(site: Site, token: str | None = None) -> Samples:
    with site.client_for(token or site.token) as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def projects_in(samples: Samples) -> set[str]:
    return {dict(labels)["project"] for _, labels in samples if "project" in dict(labels)}


def sampler_of(site: Site) -> Sampler:
    assert site.controller.sampler is not None
    return site.controller.sampler


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def idle_site(clock: Clock) -> Iterator[Site]:
    with running_site(clock=clock, idle_after_s=60.0) as site:
        yield site


def test_a_job_whose_gpus_stay_idle_is_flagged_everywhere(idle_site: Site,
                                                          clock: Clock) -> None:
    site, sampler = idle_site, sampler_of(idle_site)
    (job,) = site.submit_ok(SLEEPER, "-A", "nlp")
    site.wait(job, lambda r: r.state is JobState.RUNNING)
    reader = FakeGpuReader()
    reader.set_node(NODE, {0: GpuSample(70.0, 0.0), 1: GpuSample(65.0, 0.0)})
    sampler.reader = reader
    sampler.sample()
    since = clock.t
    shown = site.http.get(f"/v1/jobs/{job}").json()
    assert (shown["idle_gpus"], shown["idle_since_ts"]) == (False, since)
    assert shown["power_w"] == 70.0 + DGX_H100.base_busy_w / 8
    clock.t += 61
    sampler.sample()
    shown = site.http.get(f"/v1/jobs/{job}").json()
    assert (shown["idle_gpus"], shown["idle_since_ts"]) == (True, since)
    assert shown["energy_j"] == pytest.approx(645.0 * (clock.t - shown["start_ts"]))
    (row,) = site.http.get("/v1/queue").json()["jobs"]
    assert (row["id"], row["idle_gpus"], row["idle_since_ts"]) == (job, True, since)
    table = site.http.get("/v1/queue", params={"format": "text"}).text.splitlines()
    assert table[1].endswith(f"{NODE} (IdleGPUs)")
    listed = site.http.get("/v1/jobs", params={"state": "RUNNING"}).json()["jobs"]
    assert [j["idle_gpus"] for j in listed] == [True]
    assert value(scrape(site), "gefion_jobs_idle_gpus") == 1
    reader.set(NODE, 0, GpuSample(300.0, 97.0))  # it woke up
    sampler.sample()
    assert site.http.get("/v1/queue").json()["jobs"][0]["idle_gpus"] is False
    assert value(scrape(site), "gefion_jobs_idle_gpus") == 0


def test_metrics_are_the_machines_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "ENERGY_REFRESH_S", 0.0)
    with running_site() as site:
        (done,) = site.submit_ok(SCRIPT, "-A", "nlp")
        ended = site.wait(done, lambda r: r.state.terminal)
        (running,) = site.submit_ok(SLEEPER, "-A", "bio")
        site.wait(running, lambda r: r.state is JobState.RUNNING)
        (waiting,) = site.submit_ok(SCRIPT, "--gpus=2", "-A", "bio")
        site.controller.step()
        sampler_of(site).sample()
        got = scrape(site)
        assert value(got, "gefion_nodes", state="mixed") == 1
        assert value(got, "gefion_nodes", state="idle") == 0
        assert [value(got, "gefion_gpus", state=s) for s in ("allocated", "free",
                                                             "unavailable")] == [1, 1, 0]
        assert value(got, "gefion_queue_jobs", reason="RESOURCES") == 1
        assert value(got, "gefion_jobs", state="COMPLETED") == 1
        assert value(got, "gefion_power_watts", node=NODE) == DGX_H100.node_w(2, 1)
        assert value(got, "gefion_project_gpu_seconds_total", project="nlp") == \
            pytest.approx(ended.gpu_s)
        assert ended.energy_j is not None and ended.energy_j > 0
        assert value(got, "gefion_energy_joules_total", project="nlp") == ended.energy_j
        assert value(got, "gefion_energy_joules_total", project="bio") > 0  # running
        assert value(got, "gefion_store_transactions_total") > 0
        assert not [k for k in got if k[0].startswith("gefion_gpu_power")]  # modeled GPUs
        cluster = site.http.get("/v1/cluster").json()
        assert cluster["power_w"] == DGX_H100.node_w(2, 1)
        # the counters never go back, and who sees which project's usage
        assert value(scrape(site), "gefion_project_gpu_seconds_total", project="bio") >= \
            value(got, "gefion_project_gpu_seconds_total", project="bio")
        assert projects_in(got) == {"nlp", "bio"}
        nlp = scrape(site, site.token_for("ana", projects={"nlp": "member"}))
        assert projects_in(nlp) == {"nlp"}
        assert value(nlp, "gefion_gpus", state="allocated") == 1  # the machine: everyone
        assert projects_in(scrape(site, site.token_for("cid", projects={"bio": "lead"}))) == \
            {"bio"}
        assert projects_in(scrape(site, site.token_for("prom"))) == set()
        assert projects_in(scrape(site, site.token_for("ops", role="operator"))) == \
            {"nlp", "bio"}
        with site.client_for(None) as anonymous:
            refused = anonymous.get("/metrics")
        assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers
        site.http.post(f"/v1/jobs/{waiting}/cancel")
