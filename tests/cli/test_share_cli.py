"""``gefion share`` as people run it: a real ``gefion`` process against a real server, after
real jobs — fair share per project and user (as sshare) and the grants' forecast; members
see their projects, staff all."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from gefion.core.tenancy import Grant
from tests.api.helpers import ME, Site, running_site
from tests.cli.test_admin_cli import gefion, ok


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with running_site(priority_calc_period_s=0.0) as s:
        now = s.controller.now()
        s.store.create_grant(Grant("nlp-1", "nlp", 100.0, valid_from_s=now - 10,
                                   funder="EuroHPC"), ts=now, by="test")
        job_id = s.submit_ok("#!/bin/bash\n#SBATCH -G 2 -A nlp\nsleep 0.3\n")[0]
        s.wait(job_id, lambda row: row.state.terminal)
        s.controller.step()
        yield s


def test_share_prints_the_sshare_columns_and_the_grants_forecast(site: Site) -> None:
    out = ok(gefion(site, "share", token=site.token))
    for header in ("PROJECT", "USER", "RAW SHARES", "NORM SHARES", "RAW USAGE GPU-H",
                   "EFFECTIVE USAGE", "FAIRSHARE", "LEFT GPU-H", "BURN GPU-H/H", "RUNS OUT"):
        assert header in out
    nlp_user = next(line.split() for line in out.splitlines() if line.split()[:1] == [ME])
    assert float(nlp_user[-1]) < 1.0  # it used the machine: below the factor of no use
    answer = json.loads(ok(gefion(site, "share", "--json", token=site.token)))
    rows = {(r["project"], r["user"]): r for r in answer["rows"]}
    assert {("nlp", None), ("nlp", ME), ("bio", None), ("default", None)} <= set(rows)
    assert rows[("nlp", ME)]["raw_usage_gpu_s"] > 0.6  # 2 GPUs × >= 0.3 s
    assert rows[("bio", None)]["fairshare"] == 1.0  # nothing used
    (grant,) = answer["grants"]
    assert grant["project"] == "nlp" and grant["granted_gpu_hours"] == 100.0
    assert 0 < grant["charged_gpu_hours"] < 0.01 and grant["left_gpu_hours"] > 99.99
    assert grant["burn_gpu_hours_per_hour"] > 0 and grant["runs_out_ts"] > site.controller.now()
    assert grant["grants"][0]["funder"] == "EuroHPC"


def test_members_see_their_projects_only(site: Site) -> None:
    member = site.token_for("bin", projects={"bio": "member"})
    answer = json.loads(ok(gefion(site, "share", "--json", token=member)))
    assert {r["project"] for r in answer["rows"]} == {"bio"}
    assert answer["grants"] == []
    refused = gefion(site, "share", "-A", "nlp", token=member)
    assert refused.returncode != 0 and "no project 'nlp'" in refused.stderr
    with site.client_for(member) as http:
        usage = http.get("/v1/projects/bio/usage").json()
    assert usage["project"] == "bio" and usage["grants"]["left_gpu_hours"] == 0.0


def test_show_prints_the_priority_factors_with_the_fair_share_of_share(site: Site) -> None:
    """``gefion show`` of a pending job prints its factors (as sprio); its fair-share factor
    is the user's line of ``gefion share``."""
    job_id = site.submit_ok("#!/bin/bash\n#SBATCH -G 1 -A nlp -H\ntrue\n")[0]
    site.controller.step()
    out = ok(gefion(site, "show", str(job_id), token=site.token))
    assert "Priority factors" in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "FAIRSHARE" in line)
    factors = dict(zip(lines[at].split(), lines[at + 1].split(), strict=True))
    answer = json.loads(ok(gefion(site, "share", "--json", token=site.token)))
    mine = next(r for r in answer["rows"] if (r["project"], r["user"]) == ("nlp", ME))
    assert float(factors["FAIRSHARE"]) == pytest.approx(mine["fairshare"], abs=1e-6)
    assert float(factors["GRANT"]) == 1.0  # nlp is not metered
