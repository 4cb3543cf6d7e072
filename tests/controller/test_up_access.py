"""The two-command quick start with tokens: ``gefion up`` on a new site prints an admin
token once and keeps it in DATA/admin.token, where ``gefion submit`` of the same account
finds it without a login; the next start prints none and the token still works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def start(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str, str]:
    """``gefion up`` with GEFION_HOME=data_dir; (process, API URL, banner)."""
    proc = subprocess.Popen([sys.executable, "-m", "gefion.cli.main", "up", "--port", "0",
                             "--emulate-gpus", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not any("Ctrl-C" in line for line in lines):
        line = proc.stdout.readline()
        assert line or proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        lines.append(line)
    url = next(line.split()[1] for line in lines if line.strip().startswith("API"))
    return proc, url, "".join(lines)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_up_then_submit_on_the_same_machine(data_dir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GEFION_TOKEN", "GEFION_SERVER")}
    env.update({"GEFION_HOME": str(data_dir), "XDG_CONFIG_HOME": str(tmp_path / "config")})
    proc, url, banner = start(data_dir, env)
    try:
        token_file = data_dir / "admin.token"
        token = token_file.read_text().strip()
        assert f"token {token}" in banner and str(token_file) in banner
        assert token_file.stat().st_mode & 0o777 == 0o600
        submitted = subprocess.run(
            [sys.executable, "-m", "gefion.cli.main", "submit", "--hold", "--wrap", "true"],
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
            env={**env, "GEFION_SERVER": url})
        assert submitted.returncode == 0, submitted.stderr
        assert submitted.stdout == "Submitted batch job 1\n"
        log = (data_dir / "logs" / "controller.log").read_text()
        assert token not in log and token[4:] not in log
    finally:
        if proc.poll() is None:
            stop(proc)
    proc, url, banner = start(data_dir, env)
    try:
        assert "token" not in banner  # shown once: on the site's first start only
        assert token_file.read_text().strip() == token
        me = subprocess.run([sys.executable, "-m", "gefion.cli.main", "whoami"],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**env, "GEFION_SERVER": url})
        assert me.returncode == 0 and "(admin)" in me.stdout, me.stderr
    finally:
        if proc.poll() is None:
            stop(proc)
