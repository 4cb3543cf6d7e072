"""The API's JSON answers: written by orjson where it writes what the standard encoder
would, by the standard encoder otherwise — the same JSON either way."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from gefion.api.views import json_response


@pytest.mark.parametrize("body", [
    {"jobs": [{"id": 1, "name": "trænings-job ✓", "eta_ts": 1.5e9, "priority": None,
               "nodelist": ["dgx001"], "held": False, "energy_j": 0.1 + 0.2}],
     "next_after": None},
    {"big": 2**70, "small": -(2**63)},          # beyond 64 bits: the standard encoder
    {"1": "text key", "nested": {"deep": [1, [2, [3.25]]]}},
    [],
])
def test_an_answer_reads_back_as_what_was_sent(body: Any) -> None:
    response = json_response(body, 201)
    assert response.status_code == 201
    assert response.media_type == "application/json"
    assert json.loads(response.body) == body


def test_what_orjson_would_write_otherwise_goes_to_the_standard_encoder() -> None:
    # orjson writes NaN as null; the standard encoder's answer is kept as it always was.
    assert json_response({"x": math.nan, "y": [math.inf]}).body == b'{"x":NaN,"y":[Infinity]}'
    # Keys that are not text: orjson refuses them; the standard encoder makes them text.
    assert json.loads(json_response({1: "a"}).body) == {"1": "a"}
    # Non-ASCII stays as it is (UTF-8), as before.
    assert "✓".encode() in json_response({"n": "✓"}).body
