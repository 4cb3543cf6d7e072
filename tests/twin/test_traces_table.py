"""The readers' CSV table: plain files are split directly, with exactly the rows, header
and errors the csv module gives; numbered job ids are made for the rows kept."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gefion.core.errors import InputError
from gefion.twin.traces._common import NumberedIds, Table

cells = st.text(alphabet="ab1 .:-_", max_size=4)
lines = st.lists(st.lists(cells, min_size=1, max_size=4).map(",".join), min_size=1,
                 max_size=12)


def csv_rows(text: str) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip() for cell in next(reader)]
    return header, [row for row in reader if row]


@settings(max_examples=200, deadline=None)
@given(lines, st.booleans(), st.sets(st.integers(min_value=1, max_value=12)))
def test_a_plain_file_reads_as_the_csv_module_reads_it(
        body: list[str], final_newline: bool, blanks: set[int]) -> None:
    rows = [line for k, line in enumerate(body) if k not in blanks or k == 0]
    for k in sorted(blanks):
        rows.insert(min(k, len(rows)), "")  # blank lines between data lines
    if not rows[0]:
        rows[0] = "h"
    text = "\n".join(rows) + ("\n" if final_newline else "")
    header, expected = csv_rows(text)
    with tempfile.TemporaryDirectory() as folder:  # no function fixture under @given
        path = Path(folder) / "t.csv"
        path.write_text(text)
        if all(len(r) == len(header) for r in expected):
            table = Table(path)
            assert (table.header, table.rows) == (header, expected)
        else:
            with pytest.raises(InputError, match=r"expected .* fields"):
                Table(path)


def test_files_the_split_cannot_read_go_to_the_csv_module(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\r\n"x,y",2\r\n\r\n3,4\r\n')
    table = Table(path)
    assert table.header == ["a", "b"] and table.rows == [["x,y", "2"], ["3", "4"]]
    path.write_text("\na,b\n1,2\n")  # a blank first line is the csv module's header
    with pytest.raises(InputError, match="expected 0 fields"):
        Table(path)


def test_a_row_of_the_wrong_width_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n\n3\n")
    with pytest.raises(InputError) as caught:
        Table(path)
    assert caught.value.line == 4 and "expected 2 fields, got 1" in str(caught.value)


def test_numbered_ids_are_made_for_the_rows_asked() -> None:
    ids = NumberedIds("philly-", 6, 82_000)
    assert len(ids) == 82_000 and ids[0] == "philly-000001" and ids[-1] == "philly-082000"
    assert ids[2:4] == ["philly-000003", "philly-000004"]
    assert ids.take(np.array([9, 99_999 - 20_000])).tolist() == ["philly-000010",
                                                                  "philly-080000"]
    with pytest.raises(IndexError):
        ids[82_000]
