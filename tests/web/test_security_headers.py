"""Security headers on every response, and templates the strict CSP can serve: no page
may be framed, no inline script or style attribute (every browser test also fails on a
CSP violation in the console: tests/fixtures/browser.py)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from lens.web.security import SecurityHeadersMiddleware
from tests.fixtures.auth import sign_in
from tests.fixtures.users import make_user

TEMPLATES = Path(__file__).parents[2] / "lens" / "web" / "templates"


def _check(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in response.headers["permissions-policy"]
    assert "strict-transport-security" not in response.headers  # http, development


async def test_every_kind_of_response_carries_them(app_client, db) -> None:
    sign_in(app_client, await make_user(db))
    for path in (
        "/",
        "/account/delete",
        "/no-such-page",
        "/api/courses/no-such-course",
        "/healthz",
    ):
        _check(await app_client.get(path))


async def _call(app, path: str = "/") -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        return await client.get(path)


async def test_hsts_in_production_and_a_page_may_keep_its_own_policy() -> None:
    async def own(_request):
        return PlainTextResponse("x", headers={"Content-Security-Policy": "default-src 'none'"})

    inner = Starlette(routes=[Route("/", own)])
    response = await _call(SecurityHeadersMiddleware(inner, hsts=True))
    assert response.headers["content-security-policy"] == "default-src 'none'"
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert response.headers["x-frame-options"] == "DENY"


def test_no_template_needs_inline_script_or_style() -> None:
    """Pages only (e-mails are not under the site's CSP and need inline styles)."""
    found = []
    for path in TEMPLATES.rglob("*.html"):
        if "messages" in path.relative_to(TEMPLATES).parts:
            continue
        text = path.read_text()
        for pattern, what in (
            (r"<script(?![^>]*\bsrc=)[^>]*>", "inline <script>"),
            (r"\son[a-z]+\s*=", "event handler attribute"),
            (r"\sstyle\s*=", "style attribute"),
            (r"<style", "<style> element"),
            (r"javascript:", "javascript: URL"),
        ):
            if re.search(pattern, text, re.IGNORECASE):
                found.append(f"{path.relative_to(TEMPLATES)}: {what}")
    assert not found, "the CSP would block these:\n" + "\n".join(found)


def test_forwarded_addresses_are_believed_only_from_named_proxies() -> None:
    from lens.app.cli import proxy_options
    from lens.settings import Settings

    assert proxy_options(Settings(_env_file=None)) == {"proxy_headers": False}
    named = Settings(_env_file=None, LENS_FORWARDED_ALLOW_IPS="10.0.0.5")
    assert proxy_options(named) == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5"}


async def test_the_sites_own_files_are_linked_by_path(app_client) -> None:
    """Behind a proxy Lens may see http:// while the visitor sees https://: an absolute
    http:// link to the stylesheet would be blocked as mixed content."""
    page = (await app_client.get("/")).text
    assert 'href="/static/lens.css' in page
    assert "http://lens.test/static" not in page
