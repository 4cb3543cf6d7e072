"""The twin page's shelf: report folders (``gefion twin run/compare --report DIR``) under the
controller's ``reports_dir``, their Markdown rendered safely and their plots served.

Only what a report is made of is served: folders directly under the root whose names are
plain (letters, digits, ``._-``), and in them ``*.md`` documents and ``*.png``/``*.jpg``
plots that are regular files. A name is checked before any path is built, and every path
is resolved and must still lie in its folder, so neither ``..`` nor a symbolic link can
reach a file elsewhere. SVG is not served: an SVG opened directly could run script on the
portal's origin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import quote

from gefion.portal.markdown import render
from gefion.store import NotFoundError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TITLE = re.compile(r"#\s+(.+)")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
#: Documents larger than this are not rendered (a report.md is a few kB).
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
#: Report folders listed at most (newest first).
MAX_REPORTS = 200


@dataclass(frozen=True)
class Report:
    """One report folder: its Markdown documents (``report.md`` first) and plots."""

    name: str
    path: Path
    documents: tuple[str, ...]
    images: tuple[str, ...]
    modified_ts: float

    @property
    def title(self) -> str:
        """The first document's first heading, else the folder's name."""
        for doc in self.documents[:1]:
            with open(self.path / doc, encoding="utf-8", errors="replace") as f:
                for line in f.read(4096).splitlines():
                    if m := _TITLE.match(line.strip()):
                        return m.group(1).strip()
        return self.name


class ReportShelf:
    """The report folders under ``root`` (which may not exist yet)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def reports(self) -> list[Report]:
        """Every report folder (one with at least one document or plot), newest first."""
        try:
            entries = list(self.root.iterdir())
        except OSError:  # no folder yet, or not readable: no reports
            return []
        found = [r for r in (self._report(e.name) for e in entries if _NAME.fullmatch(e.name))
                 if r is not None and (r.documents or r.images)]
        found.sort(key=lambda r: (-r.modified_ts, r.name))
        return found[:MAX_REPORTS]

    def get(self, name: str) -> Report:
        report = self._report(name) if _NAME.fullmatch(name) else None
        if report is None:
            raise NotFoundError(f"no report {name!r}", field="report")
        return report

    def image(self, name: str, file: str) -> tuple[Path, str]:
        """The path and media type of plot ``file`` of report ``name``."""
        report = self.get(name)
        if file not in report.images:
            raise NotFoundError(f"no plot {file!r} in report {name!r}", field="file")
        return report.path / file, IMAGE_TYPES[Path(file).suffix.lower()]

    def _report(self, name: str) -> Report | None:
        root = self.root.resolve()
        path = (root / name).resolve()
        if path.parent != root or not path.is_dir():
            return None
        documents, images = [], []
        modified = path.stat().st_mtime
        for entry in path.iterdir():
            if not _NAME.fullmatch(entry.name) or entry.is_symlink() or not entry.is_file():
                continue
            suffix = entry.suffix.lower()
            if suffix == ".md":
                documents.append(entry.name)
            elif suffix in IMAGE_TYPES:
                images.append(entry.name)
            else:
                continue
            modified = max(modified, entry.stat().st_mtime)
        documents.sort(key=lambda d: (d != "report.md", d))
        return Report(name, path, tuple(documents), tuple(sorted(images)), modified)


def report_html(report: Report) -> str:
    """Every document of ``report`` as safe HTML, images pointing at the portal's plot
    route (only plots of this report are shown); plots no document shows come last."""
    shown: set[str] = set()

    def url(target: str) -> str | None:
        if target not in report.images:
            return None
        shown.add(target)
        return f"/portal/reports/{quote(report.name)}/{quote(target)}"

    parts = []
    for doc in report.documents:
        path = report.path / doc
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            parts.append(f"<p>{escape(doc)} is too large to show here.</p>")
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(f'<article class="report-doc" aria-label="{escape(doc, quote=True)}">'
                     f"{render(text, url)}</article>")
    extra = [img for img in report.images if img not in shown]
    if extra:
        parts.append('<section class="report-doc"><h2>Other plots</h2>' + "".join(
            f'<figure><img src="{url(img)}" alt="{escape(img, quote=True)}">'
            f"<figcaption>{escape(img)}</figcaption></figure>" for img in extra) + "</section>")
    return "\n".join(parts)
