"""The portal's HTML: one layout (header, navigation, who is signed in, live status) around
each page's body, from templates shipped as package data — no build step.

Values put into a template are escaped here; a page's body template holds only trusted
markup, and everything from the controller (job names, users, node reasons) is put into the
page by its script with ``textContent``, never as markup. The Content-Security-Policy below
allows scripts, styles and images from the portal itself only, so even a mistake there
could not run injected script.
"""

from __future__ import annotations

import functools
from html import escape
from importlib.resources import files
from string import Template

from starlette.responses import HTMLResponse

from gefion.api.auth import Principal

#: Navigation: (page, address, label, for operators and admins only).
NAV = (("machine", "/machine", "Machine", False), ("queue", "/queue", "Queue", False),
       ("projects", "/projects", "Projects", False), ("operator", "/operator", "Operator", True),
       ("twin", "/twin", "Twin", False))

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


@functools.cache
def template(name: str) -> Template:
    return Template((files("gefion.portal") / "templates" / name).read_text(encoding="utf-8"))


def body(name: str, **values: str) -> str:
    """Body template ``name`` with ``values`` escaped into it."""
    return template(name).substitute({k: escape(v, quote=True) for k, v in values.items()})


def _nav(current: str, principal: Principal | None) -> str:
    items = []
    for page, href, label, staff in NAV:
        if principal is None or (staff and not principal.is_staff):
            continue
        here = ' aria-current="page"' if page == current else ""
        items.append(f'<li><a href="{href}"{here}>{label}</a></li>')
    return "".join(items)


def _who(principal: Principal | None) -> str:
    if principal is None:
        return '<a href="/login">Log in</a>'
    return (f'<span class="who-name">{escape(principal.name)}</span> '
            f'<span class="who-note">({escape(principal.role)})</span> '
            '<form method="post" action="/portal/logout" class="inline">'
            '<button type="submit" class="link">Log out</button></form>')


def page(*, name: str, title: str, main: str, principal: Principal | None,
         script: str | None = None, status: int = 200, data: dict[str, str] | None = None
         ) -> HTMLResponse:
    """A whole page: ``main`` (trusted markup) in the layout; ``script`` a module of
    ``/portal/static``; ``data`` becomes ``data-*`` attributes of ``<main>`` for it."""
    attrs = "".join(f' data-{k}="{escape(v, quote=True)}"' for k, v in (data or {}).items())
    scripts = (f'<script type="module" src="/portal/static/{escape(script)}"></script>'
               if script else "")
    html = template("layout.html").substitute(
        title=escape(title), page=escape(name), nav=_nav(name, principal),
        who=_who(principal), main=main, attrs=attrs, scripts=scripts)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def error_page(*, name: str, status: int, title: str, message: str,
               principal: Principal | None) -> HTMLResponse:
    main = (f'<h1>{escape(title)}</h1><p class="problem" role="alert">{escape(message)}</p>'
            '<p><a href="/queue">Back to the queue</a></p>')
    return page(name=name, title=title, main=main, principal=principal, status=status)
