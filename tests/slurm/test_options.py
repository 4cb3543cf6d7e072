"""The option reader: getopt forms, values parsed where they stand, last one wins."""

from __future__ import annotations

import pytest

from gefion.slurm.directives import Token
from gefion.slurm.errors import COMMAND_LINE, SbatchError
from gefion.slurm.options import OPTIONS, Settings, read_options


def _settings(*words: str) -> Settings:
    return Settings(read_options([Token(w, None) for w in words], source=COMMAND_LINE))


@pytest.mark.parametrize("words", [
    pytest.param(("--job-name=train",), id="long-equals"),
    pytest.param(("--job-name", "train"), id="long-space"),
    pytest.param(("-Jtrain",), id="short-attached"),
    pytest.param(("-J", "train"), id="short-space"),
    pytest.param(("-J", "x", "--job-name=train"), id="last-wins-across-forms"),
])
def test_value_forms(words: tuple[str, ...]) -> None:
    assert _settings(*words).get("job-name", str) == "train"


def test_a_required_value_may_start_with_a_dash() -> None:
    assert _settings("-J", "-odd-").get("job-name", str) == "-odd-"


def test_clustered_short_flags() -> None:
    s = _settings("-HW")
    assert s.get("hold", bool) is True and s.get("wait", bool) is True


def test_flag_then_short_option_with_value_in_one_cluster() -> None:
    s = _settings("-HJtrain")
    assert s.get("hold", bool) is True and s.get("job-name", str) == "train"


def test_no_requeue_and_requeue_share_a_setting() -> None:
    assert _settings("--requeue", "--no-requeue").get("requeue", bool) is False
    assert _settings("--no-requeue", "--requeue").get("requeue", bool) is True


def test_optional_value_only_with_equals() -> None:
    with pytest.raises(SbatchError, match="unexpected argument"):
        _settings("--exclusive", "user")


@pytest.mark.parametrize(("words", "field", "why"), [
    pytest.param(("--bogus=1",), "--bogus", "--bogus is not an sbatch option", id="unknown-long"),
    pytest.param(("-y",), "-y", "-y is not an sbatch option", id="unknown-short"),
    pytest.param(("--nodelist=dgx001",), "--nodelist",
                 "--nodelist is an sbatch option that gefion submit does not support",
                 id="known-but-unsupported"),
    pytest.param(("--tim=5",), "--tim", "is not an sbatch option", id="no-abbreviations"),
    pytest.param(("--time",), "--time", "--time requires a value", id="missing-value"),
    pytest.param(("-t",), "--time", "--time requires a value", id="missing-short-value"),
    pytest.param(("--hold=yes",), "--hold", "--hold takes no value", id="flag-with-value"),
    pytest.param(("--time=soon",), "--time", "invalid time limit 'soon'", id="bad-value"),
    pytest.param(("-N", "two"), "--nodes", "invalid number 'two'", id="bad-short-value"),
    pytest.param(("--time=5", "--time=x"), "--time", "invalid time limit 'x'",
                 id="bad-later-value"),
    pytest.param(("--time=x", "--time=5"), "--time", "invalid time limit 'x'",
                 id="bad-value-refused-even-if-replaced"),
])
def test_refusals_name_the_option(words: tuple[str, ...], field: str, why: str) -> None:
    with pytest.raises(SbatchError) as info:
        _settings(*words)
    assert info.value.field == field
    assert why in str(info.value)
    assert info.value.source == COMMAND_LINE


@pytest.mark.parametrize("word", ["train.sh", "-", "--"])
def test_stray_words_on_the_command_line(word: str) -> None:
    with pytest.raises(SbatchError, match="unexpected argument"):
        _settings(word)


def test_every_option_has_a_unique_name_and_letter() -> None:
    longs = [o.long for o in OPTIONS]
    shorts = [o.short for o in OPTIONS if o.short]
    assert len(longs) == len(set(longs)) and len(shorts) == len(set(shorts))
