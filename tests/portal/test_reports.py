"""The twin page's shelf: report folders are listed newest first, and only their own
documents and plots are ever read — no ``..``, no symbolic link out, no other file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gefion.portal.reports import ReportShelf, report_html
from gefion.store import NotFoundError

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def make_report(root: Path, name: str, mtime: float, *, title: str = "Run") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "report.md").write_text(f"# {title}\n\n![plot](plot.png)\n")
    (folder / "plot.png").write_bytes(PNG)
    (folder / "extra.png").write_bytes(PNG)
    (folder / "notes.txt").write_text("not part of a report")
    for path in (*folder.iterdir(), folder):
        os.utime(path, (mtime, mtime))
    return folder


def test_reports_are_listed_newest_first_with_their_titles(tmp_path: Path) -> None:
    make_report(tmp_path, "old", 1_000, title="Old run")
    make_report(tmp_path, "new", 2_000, title="New <run>")
    (tmp_path / "empty").mkdir()
    (tmp_path / ".hidden").mkdir()
    reports = ReportShelf(tmp_path).reports()
    assert [(r.name, r.title) for r in reports] == [("new", "New <run>"), ("old", "Old run")]
    assert reports[0].documents == ("report.md",)
    assert reports[0].images == ("extra.png", "plot.png")


def test_a_missing_root_has_no_reports(tmp_path: Path) -> None:
    assert ReportShelf(tmp_path / "nope").reports() == []


def test_the_html_shows_every_plot_once_and_escapes_the_title(tmp_path: Path) -> None:
    make_report(tmp_path, "r1", 1_000, title="A <b>run</b>")
    html = report_html(ReportShelf(tmp_path).get("r1"))
    assert "<h1>A &lt;b&gt;run&lt;/b&gt;</h1>" in html
    assert html.count('src="/portal/reports/r1/plot.png"') == 1
    assert html.count('src="/portal/reports/r1/extra.png"') == 1  # under "Other plots"


@pytest.mark.parametrize(("name", "file"), [
    ("..", "passwd"), ("r1", "../r2/plot.png"), ("r1", "notes.txt"), ("r1", "report.md"),
    ("r1", "missing.png"), ("nope", "plot.png"), ("r1/..", "plot.png"), ("r1", "link.png"),
    ("outside", "plot.png"),
])
def test_only_a_reports_own_plots_are_served(tmp_path: Path, name: str, file: str) -> None:
    root = tmp_path / "reports"
    make_report(root, "r1", 1_000)
    make_report(tmp_path, "elsewhere", 1_000)
    (root / "r1" / "link.png").symlink_to(tmp_path / "elsewhere" / "plot.png")
    (root / "outside").symlink_to(tmp_path / "elsewhere")
    shelf = ReportShelf(root)
    with pytest.raises(NotFoundError):
        shelf.image(name, file)
    assert shelf.image("r1", "plot.png") == (root / "r1" / "plot.png", "image/png")
