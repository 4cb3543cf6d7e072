"""``gefion up`` as a user runs it: prints where everything is, serves the API on
127.0.0.1, stops cleanly on Ctrl-C (SIGINT) and leaves running jobs running."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_up_prints_where_things_are_serves_and_stops_on_ctrl_c(data_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gefion.cli.main", "up", "--data-dir", str(data_dir),
         "--port", "0", "--emulate-gpus", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        check_up(proc, data_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check_up(proc: subprocess.Popen[str], data_dir: Path) -> None:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not any("Ctrl-C" in line for line in lines):
        line = proc.stdout.readline()
        assert line or proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        lines.append(line)
    text = "".join(lines)
    url = next(line.split()[1] for line in lines if line.strip().startswith("API"))
    assert url.startswith("http://127.0.0.1:")
    assert f"sqlite:///{data_dir / 'gefion.db'}" in text
    assert str(data_dir / "logs" / "controller.log") in text
    assert "4 GPUs (emulated)" in text
    assert (data_dir / "api.url").read_text().strip() == url
    token = (data_dir / "admin.token").read_text().strip()  # the first start's admin token
    assert f"token {token}" in text and (data_dir / "admin.token").stat().st_mode & 0o777 \
        == 0o600
    request = urllib.request.Request(f"{url}/v1/cluster",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        summary = json.load(answer)
    assert summary["gpus"] == 4 and summary["emulated_gpus"] is True
    with pytest.raises(urllib.error.HTTPError) as refused:  # no token, no answer
        urllib.request.urlopen(f"{url}/v1/cluster", timeout=10)
    assert refused.value.code == 401
    with urllib.request.urlopen(f"{url}/openapi.json", timeout=10) as answer:
        assert "/v1/jobs" in json.load(answer)["paths"]
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "gefion controller stopped" in out
