"""Where named traces are found, and what an unknown name says."""

from __future__ import annotations

from pathlib import Path

import pytest

from gefion.core.errors import InputError
from gefion.twin.traces import list_traces, load_trace, traces_dir
from gefion.twin.traces.loader import ENV_VAR

REPO = Path(__file__).resolve().parents[2]


def test_explicit_beats_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert traces_dir(tmp_path / "x") == tmp_path / "x"
    assert traces_dir(str(tmp_path / "y")) == tmp_path / "y"
    assert traces_dir() == tmp_path / "env"


def test_default_is_shared_traces_beside_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    expected = REPO.parent / "shared" / "traces"
    assert traces_dir() == expected
    assert expected.is_dir(), "the public traces must be in ../shared/traces"


def test_list_traces() -> None:
    infos = {info.name: info for info in list_traces()}
    assert set(infos) == {"itp-elasticflow", "philly-pollux", "alibaba-openb-2023"}
    assert infos["itp-elasticflow"].selections[0] == "cluster01"
    assert len(infos["itp-elasticflow"].selections) == 10
    assert "6214e9" in infos["philly-pollux"].selections
    assert all(info.path is not None for info in infos.values())


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(InputError) as err:
        load_trace("helios")
    assert err.value.field == "trace"
    message = str(err.value)
    for name in ("itp-elasticflow", "philly-pollux", "alibaba-openb-2023"):
        assert name in message


def test_env_var_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "itp-elasticflow"
    folder.mkdir()
    (folder / "cluster01.csv").write_text(
        "job_id,submission_time,duration,num_gpu\na,100,700,8\nb,50,600,1\n")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    trace = load_trace("itp-elasticflow")
    assert [(j.job_id, j.submit_s, j.project) for j in trace.jobs] == [
        ("b", 0.0, "cluster01"), ("a", 50.0, "cluster01")]
    with pytest.raises(InputError, match=r"known: itp-elasticflow \(selections: cluster01\)"):
        load_trace("philly-pollux")
