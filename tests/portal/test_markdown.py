"""The twin reports' Markdown, rendered safely: what the reports use becomes HTML, and
nothing a report holds can become markup of its own."""

from __future__ import annotations

import pytest

from gefion.portal.markdown import inline, render


def no_images(_: str) -> str | None:
    return None


@pytest.mark.parametrize(("text", "html"), [
    ("plain", "plain"),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ('a "quoted" & <b>', "a &quot;quoted&quot; &amp; &lt;b&gt;"),
    ("**bold** and *em*", "<strong>bold</strong> and <em>em</em>"),
    ("`<code> **kept**`", "<code>&lt;code&gt; **kept**</code>"),
    ("[site](https://example.org/a?b=1&c=2)",
     '<a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer">site</a>'),
    ("[bad](javascript:alert(1))", "[bad](javascript:alert(1))"),
    ('[x](https://e.org/"onmouseover=alert(1))',
     '<a href="https://e.org/&quot;onmouseover=alert(1" rel="noopener noreferrer">x</a>)'),
    ("2 * 3 * 4", "2 * 3 * 4"),
])
def test_inline_text_is_escaped_before_markup_is_added(text: str, html: str) -> None:
    assert inline(text) == html


def test_a_report_renders_headings_tables_lists_and_its_own_images() -> None:
    text = "\n".join([
        "# Twin run: <small>", "", "Seed 1, **12** jobs.", "", "## Summary", "",
        "| metric | value |", "|---|---|", "| avg JCT | 6,503 s |", "| a \\| b | <i> |", "",
        "- one", "- two", "", "1. first", "", "![GPU allocation](allocation.png)", "",
        "![elsewhere](../../etc/passwd.png)"])
    html = render(text, lambda f: f"/plots/{f}" if f == "allocation.png" else None)
    assert "<h1>Twin run: &lt;small&gt;</h1>" in html
    assert "<p>Seed 1, <strong>12</strong> jobs.</p>" in html
    assert '<th scope="col">metric</th>' in html and "<td>avg JCT</td>" in html
    assert "<td>a | b</td><td>&lt;i&gt;</td>" in html
    assert "<ul><li>one</li><li>two</li></ul>" in html and "<ol><li>first</li></ol>" in html
    assert '<img src="/plots/allocation.png" alt="GPU allocation">' in html
    assert "[image not shown: elsewhere]" in html and "passwd" not in html
    assert "<small>" not in html and "<i>" not in html


def test_raw_html_blocks_stay_text() -> None:
    html = render('<img src=x onerror="alert(1)">\n<iframe src="https://e.org">', no_images)
    assert "<img" not in html and "<iframe" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
