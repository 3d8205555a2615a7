"""Lens's static files are linked by their content's hash and cached for a year; a
changed file gets a new address; an address without the current hash is checked again."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from lens.web.static import HashedStaticFiles


async def test_pages_link_hashed_files_that_are_kept_for_a_year(app_client) -> None:
    page = await app_client.get("/course/intro-to-ai-safety/welcome")
    links = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert any(link.startswith("/static/lens.css?v=") for link in links)
    assert any(link.startswith("/static/reader.js?v=") for link in links)
    for link in links:
        assert re.search(r"\?v=[0-9a-f]{12}$", link), link
        kept = await app_client.get(link)
        assert kept.status_code == 200
        assert kept.headers["cache-control"] == "public, max-age=31536000, immutable"
    unhashed = await app_client.get("/static/lens.css")
    assert unhashed.status_code == 200 and unhashed.headers["cache-control"] == "no-cache"
    stale = await app_client.get("/static/lens.css?v=000000000000")
    assert stale.headers["cache-control"] == "no-cache"
    assert (await app_client.get("/static/nope.css?v=1")).status_code == 404


async def test_a_changed_file_gets_a_new_address(tmp_path: Path) -> None:
    import os

    clock = [1000.0]
    (tmp_path / "a.css").write_text("body { color: red }")
    static = HashedStaticFiles(directory=tmp_path, clock=lambda: clock[0])
    first = static.url("a.css")
    assert re.fullmatch(r"/static/a\.css\?v=[0-9a-f]{12}", first)
    (tmp_path / "a.css").write_text("body { color: blue }")
    os.utime(tmp_path / "a.css", (1, 1))  # a new mtime, whatever the clock's resolution
    clock[0] += 0.5
    assert static.url("a.css") == first  # not looked at again within the second
    clock[0] += 1
    second = static.url("a.css")
    assert second != first
    app = Starlette(routes=[Mount("/static", static)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        old = await client.get(first)
        assert old.text == "body { color: blue }" and old.headers["cache-control"] == "no-cache"
        new = await client.get(second)
        assert new.headers["cache-control"].endswith("immutable")
    assert static.url("../outside.css") == "/static/../outside.css"  # no hash outside
