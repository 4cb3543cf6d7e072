"""A small, safe Markdown renderer for the twin's reports (``report.md``, ``compare.md``).

It knows what the reports use — ATX headings, paragraphs, pipe tables, lists, images on a
line of their own, ``code``, **strong**, *emphasis* and links — and nothing else. Safety
comes first: all text is HTML-escaped before any markup is added, so a report (a trace's
project names end up in it) can never put a tag, an attribute or a script on the page.
Links are kept only for ``http``/``https`` targets; an image only when ``image_url`` (the
caller's check that the file is a plot of the same report) gives it an address.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape

ImageUrl = Callable[[str], str | None]

_HEADING = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*$")
_IMAGE_LINE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)\s*$")
_TABLE_RULE = re.compile(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LIST_ITEM = re.compile(r"([-*+]|\d{1,9}[.)])\s+(.*)$")
_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def inline(text: str) -> str:
    """One line of text as HTML: escaped, then code spans, strong, emphasis and links."""
    out = escape(text.replace("\x00", ""), quote=True)
    codes: list[str] = []

    def keep_code(m: re.Match[str]) -> str:
        codes.append(f"<code>{m.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = _CODE.sub(keep_code, out)  # no markup inside code spans
    out = _STRONG.sub(r"<strong>\1</strong>", out)
    out = _EM.sub(r"<em>\1</em>", out)
    out = _LINK.sub(r'<a href="\2" rel="noopener noreferrer">\1</a>', out)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], out)


def _cells(line: str) -> list[str]:
    """A table row's cells; ``\\|`` is a literal bar."""
    row = line.strip()
    row = row.removeprefix("|")
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row)]


def _table(lines: list[str]) -> str:
    header, body = _cells(lines[0]), [_cells(line) for line in lines[2:]]
    head = "".join(f'<th scope="col">{inline(c)}</th>' for c in header)
    rows = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>"
                   for row in body)
    return (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def render(text: str, image_url: ImageUrl) -> str:
    """``text`` (Markdown) as HTML safe to put in a page."""
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    ordered = False

    def flush() -> None:
        nonlocal items
        if para:
            out.append("<p>" + " ".join(inline(p) for p in para) + "</p>")
            para.clear()
        if items:
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{inline(i)}</li>" for i in items)
                       + f"</{tag}>")
            items = []

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            flush()
        elif m := _HEADING.match(stripped):
            flush()
            level = len(m.group(1))
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
        elif m := _IMAGE_LINE.match(stripped):
            flush()
            url = image_url(m.group(2))
            alt = escape(m.group(1), quote=True)
            out.append(f'<figure><img src="{escape(url, quote=True)}" alt="{alt}">'
                       f"<figcaption>{alt}</figcaption></figure>" if url is not None
                       else f"<p>[image not shown: {alt}]</p>")
        elif stripped.startswith("|") and i + 1 < len(lines) \
                and _TABLE_RULE.match(lines[i + 1].strip()):
            flush()
            j = i + 2
            while j < len(lines) and lines[j].strip().startswith("|"):
                j += 1
            out.append(_table([lines[k].strip() for k in range(i, j)]))
            i = j
            continue
        elif m := _LIST_ITEM.match(stripped):
            is_ordered = m.group(1)[0].isdigit()
            if para or (items and is_ordered != ordered):
                flush()
            ordered = is_ordered
            items.append(m.group(2))
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + stripped
        else:
            if items:
                flush()
            para.append(stripped)
        i += 1
    flush()
    return "\n".join(out)
