"""``gefion admin``, ``login``, ``whoami``, ``logout`` as people run them: real ``gefion``
processes against a real server; a token printed once and found again where the
commands look for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.helpers import ME, NODE, Site, running_site


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with running_site() as s:
        yield s


def gefion(site: Site, *args: str, token: str | None = None, stdin: str | None = None,
           home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``gefion ARGS`` with ``token`` in GEFION_TOKEN (None: none), and HOME-like
    directories under ``home`` (so no token of the machine's is found by accident)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GEFION_TOKEN", "GEFION_SERVER", "GEFION_HOME", "XDG_CONFIG_HOME")}
    env.update({"GEFION_SERVER": site.url, "COLUMNS": "200", "NO_COLOR": "1"})
    if token is not None:
        env["GEFION_TOKEN"] = token
    if home is not None:
        env.update({"XDG_CONFIG_HOME": str(home / "config"), "GEFION_HOME": str(home / "data"),
                    "HOME": str(home)})
    return subprocess.run([sys.executable, "-m", "gefion.cli.main", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def test_an_admin_sets_up_a_project(site: Site) -> None:
    admin = site.token
    ok(gefion(site, "admin", "project", "add", "chem", "--shares", "2", "--max-gpus", "32",
              "--metered", "--description", "chemistry", token=admin))
    ok(gefion(site, "admin", "user", "add", "bin", "--default-project", "chem", token=admin))
    ok(gefion(site, "admin", "member", "add", "chem", "bin", "--role", "lead", token=admin))
    created = gefion(site, "admin", "token", "create", "bin", "--name", "laptop", "--expires",
                     "30d", token=admin)
    token = ok(created).strip()
    assert token.startswith("gfn_") and "\n" not in token  # stdout is the token alone
    assert "shown only now" in created.stderr
    listed = ok(gefion(site, "admin", "token", "list", "--user", "bin", "--json",
                       token=admin))
    (row,) = json.loads(listed)
    assert token not in listed and row["name"] == "laptop" and row["status"] == "active"
    assert row["expires_ts"] == pytest.approx(time.time() + 30 * 86_400, abs=120)
    members = json.loads(ok(gefion(site, "admin", "member", "list", "chem", "--json",
                                   token=token)))
    assert [(m["user"], m["role"]) for m in members] == [("bin", "lead")]
    users = ok(gefion(site, "admin", "user", "list", token=admin))
    assert "bin" in users and "chem(lead)" in users
    projects = ok(gefion(site, "admin", "project", "list", token=token))
    assert "chem" in projects and "nlp" not in projects and "lead" in projects
    ok(gefion(site, "admin", "token", "revoke", row["id"], token=admin))
    refused = gefion(site, "whoami", token=token)
    assert refused.returncode == 2 and "revoked" in refused.stderr


def test_qos_grants_and_reservations(site: Site) -> None:
    admin = site.token
    ok(gefion(site, "admin", "qos", "add", "urgent", "--priority", "1000", "--preempts",
              "scavenger", "--max-time", "2:00:00", "--grace", "10", token=admin))
    (qos,) = [q for q in json.loads(ok(gefion(site, "admin", "qos", "list", "--json",
                                              token=admin))) if q["name"] == "urgent"]
    assert (qos["max_time_limit_s"], qos["preempts"], qos["grace_s"]) == \
        (7200, ["scavenger"], 10)
    out = ok(gefion(site, "admin", "grant", "add", "nlp", "--gpu-hours", "50000", "--funder",
                    "EuroHPC", "--to", "2100-01-01", token=admin))
    assert out.startswith("grant nlp-") and "50000 GPU-hours" in out
    (grant,) = json.loads(ok(gefion(site, "admin", "grant", "list", "--project", "nlp",
                                    "--json", token=admin)))
    assert grant["funder"] == "EuroHPC" and grant["valid_to_ts"] > time.time()
    out = ok(gefion(site, "admin", "reservation", "add", "forecast", "--nodes", "node[1-1]",
                    "--start", "now+1hours", "--duration", "4h", "--daily", "--projects",
                    "nlp", token=admin))
    assert out.strip() == f"reservation forecast: {NODE}"
    (res,) = json.loads(ok(gefion(site, "admin", "reservation", "list", "--json",
                                  token=admin)))
    assert (res["period_s"], res["end_ts"] - res["start_ts"], res["projects"]) == \
        (86_400, 4 * 3600, ["nlp"])
    assert "forecast" in ok(gefion(site, "admin", "reservation", "list", token=admin))
    ok(gefion(site, "admin", "reservation", "delete", "forecast", token=admin))
    bad = gefion(site, "admin", "reservation", "add", "x", "--nodes", "dgx001", "--start",
                 "now", "--end", "now+1hours", token=admin)
    assert bad.returncode == 2 and "field 'nodes'" in bad.stderr and "dgx001" in bad.stderr
    audit = json.loads(ok(gefion(site, "admin", "audit", "--kind", "reservation.deleted",
                                 "--json", token=admin)))
    assert [(e["kind"], e["payload"]["by"]) for e in audit["events"]] == \
        [("reservation.deleted", ME)]


def test_only_admins_administer(site: Site) -> None:
    token = site.token_for("sys", projects={"bio": "member"})
    refused = gefion(site, "admin", "user", "add", "eve", token=token)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")
    assert "only admins may add users" in refused.stderr and "Traceback" not in refused.stderr
    nobody = gefion(site, "admin", "user", "list", home=Path("/nonexistent-home"))
    assert nobody.returncode == 2 and "authentication required" in nobody.stderr


def test_login_keeps_the_token_where_every_command_finds_it(site: Site,
                                                            tmp_path: Path) -> None:
    token = site.token_for("lena", projects={"nlp": "member"})
    bad = gefion(site, "login", stdin="gfn_" + "x" * 43 + "\n", home=tmp_path)
    assert bad.returncode == 2 and "unknown token" in bad.stderr
    assert not (tmp_path / "config" / "gefion" / "token").exists()  # a refused one is not kept
    out = ok(gefion(site, "login", stdin=token + "\n", home=tmp_path))
    saved = tmp_path / "config" / "gefion" / "token"
    assert "signed in as lena (user)" in out and saved.read_text().strip() == token
    assert saved.stat().st_mode & 0o777 == 0o600
    me = json.loads(ok(gefion(site, "whoami", "--json", home=tmp_path)))
    assert (me["name"], me["projects"]) == ("lena", {"nlp": "member"})
    fast = subprocess.run([sys.executable, "-m", "gefion.cli.fastqueue", "queue", "--json"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "GEFION_SERVER": site.url,
                               "XDG_CONFIG_HOME": str(tmp_path / "config"),
                               "GEFION_TOKEN": ""})
    assert fast.returncode == 0, fast.stderr
    assert "removed" in ok(gefion(site, "logout", home=tmp_path)) and not saved.exists()
    assert gefion(site, "whoami", home=tmp_path).returncode == 2


def test_the_site_admin_token_is_found_in_the_data_directory(site: Site,
                                                             tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "admin.token").write_text(site.token + "\n")
    assert ok(gefion(site, "whoami", home=tmp_path)).startswith(f"{ME} (admin)")


def test_a_token_given_on_the_command_line(site: Site, tmp_path: Path) -> None:
    token = site.token_for("omar", projects={"nlp": "member"})
    assert ok(gefion(site, "whoami", "--token", token, home=tmp_path)).startswith("omar")
    fast = subprocess.run([sys.executable, "-m", "gefion.cli.fastqueue", "queue", "--token",
                           token], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "GEFION_SERVER": site.url,
                               "XDG_CONFIG_HOME": str(tmp_path), "GEFION_TOKEN": "",
                               "GEFION_HOME": str(tmp_path)})
    assert fast.returncode == 0 and fast.stdout.startswith("JOBID"), fast.stderr
    anonymous = subprocess.run([sys.executable, "-m", "gefion.cli.fastqueue", "queue"],
                               capture_output=True, text=True, timeout=60, check=False,
                               env={**os.environ, "GEFION_SERVER": site.url,
                                    "XDG_CONFIG_HOME": str(tmp_path), "GEFION_TOKEN": "",
                                    "GEFION_HOME": str(tmp_path)})
    assert anonymous.returncode == 2 and "authentication required" in anonymous.stderr


def test_bootstrap_token_opens_the_database_directly(site: Site) -> None:
    url = site.controller.config.database_url
    proc = subprocess.run([sys.executable, "-m", "gefion.cli.main", "admin",
                           "bootstrap-token", "--db", url], capture_output=True, text=True,
                          timeout=60, check=False)
    token = ok(proc).strip()
    assert "24 hours" in proc.stderr
    with site.client_for(token) as http:
        assert http.get("/v1/me").json()["name"] == ME
    refused = subprocess.run([sys.executable, "-m", "gefion.cli.main", "admin",
                              "bootstrap-token", "--db", url, "--user", "bin"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 2 and "no admin named 'bin'" in refused.stderr


def test_admin_help_imports_no_client_and_no_server() -> None:
    code = textwrap.dedent("""
        import sys
        from gefion.cli.main import app
        for argv in (["admin", "--help"], ["admin", "token", "create", "--help"],
                     ["login", "--help"], ["whoami", "--help"]):
            try:
                app(argv, prog_name="gefion")
            except SystemExit:
                pass
        heavy = ("httpx", "fastapi", "sqlalchemy", "uvicorn", "gefion.client",
                 "gefion.api", "gefion.controller", "gefion.store")
        print("HEAVY:", *sorted({m for m in sys.modules if m.startswith(heavy)}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "HEAVY:", proc.stdout
