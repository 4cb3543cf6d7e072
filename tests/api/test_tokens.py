"""API tokens: shown once, kept only as a SHA-256, never in a log, an event, a job's
environment or the database in clear; an expired or revoked token is refused at once."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gefion.api.server import ApiServer
from gefion.store import Store
from gefion.store.tokens import TOKEN_PATTERN
from tests.api.helpers import ME, SCRIPT, Site, running_site

DAY_S = 86_400


class Clock:
    """A clock the test moves: the controller's (and so the API's) time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(clock: Clock) -> Iterator[Site]:
    with running_site(clock=clock) as s:
        yield s


class Collect(logging.Handler):
    """Every record of every logger it is attached to, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def db_bytes(site: Site) -> bytes:
    """The SQLite database as it is on disk, write-ahead log included."""
    path = Path(site.controller.config.data_dir) / "gefion.db"
    return b"".join(p.read_bytes() for p in path.parent.glob("gefion.db*"))


def test_a_token_is_stored_hashed_and_never_logged(site: Site,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A server of its own that logs every request, as a verbose deployment would (made
    # first: uvicorn configures its loggers when it is made).
    collect = Collect()
    loggers = [logging.getLogger(n) for n in ("", "gefion", "uvicorn", "uvicorn.access",
                                              "uvicorn.error", "fastapi", "httpx")]
    levels = [lg.level for lg in loggers]
    loud = ApiServer(site.server.app, log_level="debug")
    for lg in loggers:
        lg.addHandler(collect)
        lg.setLevel(logging.DEBUG)
    try:
        with loud:
            token = site.token_for("bin", projects={"nlp": "member"})
            with httpx.Client(base_url=loud.url, timeout=30,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                submitted = http.post("/v1/jobs", json={
                    "script": SCRIPT, "argv": ["--hold"], "cwd": str(site.workdir),
                    "env": {"PATH": "/bin", "GEFION_TOKEN": token, "MY_CI_SECRET": token}})
                assert submitted.status_code == 201, submitted.text
                job_id = submitted.json()["job_ids"][0]
                assert http.get(f"/v1/jobs/{job_id}").status_code == 200
                assert http.post("/v1/nodes/node1/drain", json={"reason": "x"}) \
                    .status_code == 403
                # a token with something after it, and an internal error while signed in
                bad = httpx.get(f"{loud.url}/v1/me", headers={
                    "Authorization": f"Bearer {token}x"})
                assert bad.status_code == 401 and token not in bad.text

                def broken() -> dict[str, Any]:
                    raise RuntimeError(f"failed while serving {token[:3]}...")

                monkeypatch.setattr(site.controller, "summary", broken)
                assert http.get("/v1/cluster").status_code == 500
        site.denials.flush()
        row = site.controller.get_job(job_id)
        assert "GEFION_TOKEN" not in row.spec["env"] and "MY_CI_SECRET" not in row.spec["env"]
        assert row.spec["env"]["PATH"] == "/bin"
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(collect)
            lg.setLevel(level)
    text = "\n".join(collect.lines)
    assert '"POST /v1/jobs HTTP/1.1" 201' in text  # the access log did run
    assert "internal error in GET /v1/cluster" in text  # and the error path's traceback
    assert token not in text
    assert token[4:] not in text  # not even without its prefix
    stored = db_bytes(site)
    assert token.encode() not in stored and token[4:].encode() not in stored
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert digest.encode() in stored  # what is kept instead
    everything = str(site.store.events_since(0, limit=10_000))
    assert token not in everything and token[4:] not in everything


def test_a_new_token_is_shown_once(site: Site) -> None:
    site.token_for("bin", projects={"nlp": "member"})
    made = site.http.post("/v1/tokens", json={"user": "bin", "name": "laptop"})
    assert made.status_code == 201, made.text
    body = made.json()
    token = body["token"]
    assert TOKEN_PATTERN.fullmatch(token) and body["prefix"] == token[:12]
    assert body["expires_ts"] == pytest.approx(site.controller.now() + 90 * DAY_S)
    assert body["status"] == "active" and body["created_by"] == ME
    listed = site.http.get("/v1/tokens", params={"user": "bin"}).text
    assert token not in listed and token[4:] not in listed and "hash" not in listed
    assert body["id"] in listed
    with site.client_for(token) as bin_:
        assert bin_.get("/v1/me").json()["name"] == "bin"
        mine = bin_.get("/v1/tokens").json()["tokens"]
        assert {t["user"] for t in mine} == {"bin"} and len(mine) == 2
        assert bin_.get("/v1/tokens", params={"user": "root"}).status_code == 403


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"user": "nobody-here"}, 404, "user"),
    ({"user": "bin", "expires_in_s": 60, "never_expires": True}, 400, "expires_in_s"),
    ({"user": "bin", "expires_in_s": 60, "expires_ts": 1e10}, 400, "expires_ts"),
    ({"user": "bin", "expires_ts": 1.0}, 400, "expires_ts"),
    ({"user": "bin", "expires_in_s": -5}, 422, "expires_in_s"),
    ({"user": "bin bin"}, 422, "user"),
])
def test_bad_token_requests_name_the_field(site: Site, body: dict[str, Any], status: int,
                                           field: str) -> None:
    site.token_for("bin")
    seq = site.last_seq()
    response = site.http.post("/v1/tokens", json=body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert site.last_seq() == seq


def test_lifetimes(site: Site, clock: Clock) -> None:
    site.token_for("bin")
    never = site.http.post("/v1/tokens", json={"user": "bin", "never_expires": True}).json()
    hour = site.http.post("/v1/tokens", json={"user": "bin", "expires_in_s": 3600}).json()
    at = site.http.post("/v1/tokens", json={"user": "bin", "expires_ts": clock.now + 60})
    assert never["expires_ts"] is None
    assert hour["expires_ts"] == pytest.approx(clock.now + 3600)
    assert at.json()["expires_ts"] == pytest.approx(clock.now + 60)


def test_an_expired_token_is_refused(site: Site, clock: Clock) -> None:
    token = site.token_for("bin", projects={"nlp": "member"}, expires_ts=clock.now + 60)
    with site.client_for(token) as bin_:
        assert bin_.get("/v1/me").status_code == 200  # and now it is cached
        clock.now += 59
        assert bin_.get("/v1/queue").status_code == 200
        clock.now += 2
        seq = site.last_seq()
        refused = bin_.get("/v1/queue")
        assert refused.status_code == 401 and "expired" in refused.json()["detail"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
    (denied,) = site.store.audit_events(after_seq=seq, kinds=["access.denied"])
    assert (denied.payload["principal"], denied.payload["reason"]) == ("bin", "expired")
    listed = {t["id"]: t["status"] for t in site.http.get("/v1/tokens").json()["tokens"]}
    assert listed[denied.payload["token"]] == "expired"


def test_a_revoked_token_is_refused_from_the_next_request(site: Site) -> None:
    token = site.token_for("bin", projects={"nlp": "member"})
    (row,) = site.store.list_tokens("bin")
    with site.client_for(token) as bin_:
        assert bin_.get("/v1/me").status_code == 200  # cached
        revoked = site.http.post(f"/v1/tokens/{row.id}/revoke")
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        refused = bin_.get("/v1/me")
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
        assert site.http.post(f"/v1/tokens/{row.id}/revoke").status_code == 409
    assert site.http.post("/v1/tokens/nosuchtoken/revoke").status_code == 404


def test_a_revocation_by_another_process_takes_effect_within_the_cache_ttl(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = site.server.app.state.auth
    monkeypatch.setattr(auth, "_ttl_s", 0.3)
    token = site.token_for("bin", projects={"nlp": "member"})
    (row,) = site.store.list_tokens("bin")
    with site.client_for(token) as bin_:
        assert bin_.get("/v1/me").status_code == 200
        with Store.open(site.controller.config.database_url) as other:  # another process
            other.revoke_token(row.id, ts=site.controller.now(), by="elsewhere")
        time.sleep(0.4)
        assert bin_.get("/v1/me").status_code == 401


@pytest.mark.parametrize("header", [
    None, "Basic Ym9iOnNlY3JldA==", "Bearer", "Bearer not-a-token",
    "Bearer gfn_" + "A" * 43,  # the shape of a token, but no such token
])
def test_no_valid_token_is_401(site: Site, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = httpx.get(f"{site.url}/v1/jobs", headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == 'Bearer realm="gefion"'
    assert "AAAAAAAA" not in response.text and "Ym9i" not in response.text


def test_a_portal_session_stands_for_its_token(site: Site) -> None:
    auth = site.server.app.state.auth
    token = site.token_for("bin", projects={"nlp": "member"})
    session = auth.sign_in(token)
    cookies = {"gefion_session": session}
    with httpx.Client(base_url=site.url, cookies=cookies, timeout=30) as browser:
        assert browser.get("/v1/me").json()["name"] == "bin"
        (job_id,) = site.submit_ok(SCRIPT, "--hold", "-A", "nlp")
        assert browser.post(f"/v1/jobs/{job_id}/cancel").status_code == 401  # no Origin
        forged = browser.post(f"/v1/jobs/{job_id}/cancel",
                              headers={"Origin": "https://evil.example"})
        assert forged.status_code == 401 and forged.json()["detail"].endswith("this site")
        host = site.url.split("://")[1]
        mine = browser.post(f"/v1/jobs/{job_id}/cancel", headers={"Origin": f"http://{host}"})
        assert mine.status_code == 403  # the cookie works; the admin's job is not bin's
        (row,) = site.store.list_tokens("bin")
        site.http.post(f"/v1/tokens/{row.id}/revoke")
        assert browser.get("/v1/me").status_code == 401  # the session ends with its token
    auth.sign_out(session)
    with pytest.raises(Exception, match="signed in"):
        auth.session(session)
