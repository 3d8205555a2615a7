from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import event, select

from lens.auth.service import create_bot_code
from lens.courses.models import Progress
from tests.fixtures.auth import ORIGIN, sign_in
from tests.fixtures.users import make_user

EXAMPLE = Path(__file__).parents[2] / "examples" / "course"
COURSE = "/course/intro-to-ai-safety"

# What the sanitiser makes inert on a page that is served. Links that run code are also
# refused by the validator (tests/content/test_rules.py: `link.unsafe`), so they are tried
# on the renderer alone below.
LINKS_THAT_RUN_CODE = """
<a href="javascript:alert('link')">click me</a>
[markdown link](javascript:alert('md'))
<a href="java&#x09;script:alert('tab')">tab</a>
"""
HOSTILE = """
<script>alert('text')</script>
<img src="x.png" onerror="alert('img')">
<iframe src="https://evil.example"></iframe>
<p onclick="alert('p')" style="color:red">styled</p>
<svg onload="alert('svg')"></svg>
"""


@pytest.fixture
def hostile_course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    shutil.copytree(EXAMPLE, root)
    welcome = root / "modules" / "welcome.md"
    welcome.write_text(
        welcome.read_text().replace("Each week you work", HOSTILE + "\nEach week you work")
    )
    article = root / "articles" / "field-notes-on-specification-gaming.md"
    article.write_text(
        article.read_text().replace(
            "Imagine a racing game",
            '<img src=x onerror="alert(1)"><script>bad()</script>Imagine a racing game',
        )
    )
    return root


def active_parts(html: str) -> list[str]:
    """Anything in the page that could run script, other than Lens's own reader.js."""
    found = []
    for match in re.finditer(r"<script\b[^>]*>", html, re.I):
        if "/static/reader.js" not in match.group(0):
            found.append(match.group(0))
    found += re.findall(r"\son\w+\s*=", html, re.I)
    found += re.findall(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", html, re.I)
    found += [
        m for m in re.findall(r"<iframe\b[^>]*>", html, re.I) if "youtube-nocookie.com" not in m
    ]
    found += re.findall(r"<svg\b", html, re.I)
    return found


async def test_hostile_content_is_inert(client_factory, hostile_course) -> None:
    async with client_factory(CONTENT_DIR=str(hostile_course)) as client:
        page = await client.get(f"{COURSE}/welcome")
        assert page.status_code == 200
        assert "Each week you work" in page.text  # the section did render
        assert active_parts(page.text) == []
        assert 'href="javascript' not in page.text
        article = await client.get(f"{COURSE}/specification-gaming?s=2")
        assert "Imagine a racing game" in article.text
        assert active_parts(article.text) == []
        api = await client.get("/api/courses/intro-to-ai-safety/modules/welcome")
        assert active_parts(api.text) == []


def test_links_that_run_code_are_inert_when_rendered() -> None:
    from lens.web.markdown import render_markdown

    html = render_markdown(LINKS_THAT_RUN_CODE + HOSTILE)
    assert "click me" in html and active_parts(html) == []
    assert "href" not in html.split("click me")[0].rsplit("<a", 1)[1]  # the link is gone


async def test_a_module_with_a_link_that_runs_code_is_not_served(
    client_factory, hostile_course
) -> None:
    welcome = hostile_course / "modules" / "welcome.md"
    welcome.write_text(welcome.read_text().replace("Each week", LINKS_THAT_RUN_CODE + "Each week"))
    async with client_factory(CONTENT_DIR=str(hostile_course)) as client:
        page = await client.get(f"{COURSE}/welcome")
        assert page.status_code == 404
        overview = await client.get(COURSE)
        assert overview.status_code == 200  # the rest of the course is served


async def test_external_links_get_noopener(client_factory, tmp_path) -> None:
    root = tmp_path / "course"
    shutil.copytree(EXAMPLE, root)
    welcome = root / "modules" / "welcome.md"
    welcome.write_text(
        welcome.read_text().replace(
            "Then you meet", "[See more](https://example.org). Then you meet"
        )
    )
    async with client_factory(CONTENT_DIR=str(root)) as client:
        page = await client.get(f"{COURSE}/welcome")
    assert '<a href="https://example.org" rel="noopener noreferrer">See more</a>' in page.text


async def test_module_page_runs_a_fixed_number_of_queries(app_client, engine, db) -> None:
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        await app_client.get(f"{COURSE}/goals-and-means?s=2")  # warm up: reader cookie
        for url in (f"{COURSE}/goals-and-means?s=2", f"{COURSE}/specification-gaming?s=3"):
            statements.clear()
            assert (await app_client.get(url)).status_code == 200
            anonymous = [
                s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO"))
            ]
            assert len(anonymous) == 1, anonymous  # the reader's progress rows
        sign_in(app_client, await make_user(db))
        statements.clear()
        assert (await app_client.get(f"{COURSE}/goals-and-means?s=2")).status_code == 200
        signed_in = [
            s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO"))
        ]
        assert len(signed_in) == 1, signed_in  # the user and their progress, in one
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def complete_all(client, module: str, sections: int) -> None:
    for s in range(1, sections + 1):
        page = await client.get(f"{COURSE}/{module}?s={s}")
        content_id = re.search(r'name="content_id" value="([^"]+)"', page.text)
        if content_id is None:
            continue  # already done
        response = await client.post(
            f"{COURSE}/{module}/complete",
            data={"content_id": content_id.group(1), "s": str(s)},
            headers=ORIGIN,
        )
        assert response.status_code == 303


async def test_completing_every_required_section_completes_the_module(app_client) -> None:
    overview = await app_client.get(COURSE)
    assert overview.text.count("not started") == 5
    await complete_all(app_client, "welcome", 2)
    done = await app_client.get(f"{COURSE}/welcome?s=2&done=1")
    assert "Module completed" in done.text
    assert "Next module: Goals and means" in done.text
    overview = await app_client.get(COURSE)
    assert re.search(
        r"Welcome to the course</a>\s*<span class=\"status\"[^>]*>completed", overview.text
    )
    assert "1 of 2 required modules completed" in overview.text
    assert "Continue: Goals and means" in overview.text


async def test_optional_sections_are_not_needed(app_client) -> None:
    # goals-and-means: a page, a required video lens and an optional one.
    page1 = await app_client.get(f"{COURSE}/goals-and-means?s=1")
    for s in (1, 2):
        page = await app_client.get(f"{COURSE}/goals-and-means?s={s}")
        cid = re.search(r'name="content_id" value="([^"]+)"', page.text).group(1)
        last = await app_client.post(
            f"{COURSE}/goals-and-means/complete",
            data={"content_id": cid, "s": str(s)},
            headers=ORIGIN,
        )
    assert page1.status_code == 200
    assert last.headers["location"].endswith("done=1")
    unit_done = await app_client.get(last.headers["location"])
    assert "Meeting 1 is next" in unit_done.text


async def test_heartbeats_count_time_once(app_client, db) -> None:
    await app_client.get(f"{COURSE}/welcome")  # gets the reader cookie
    body = {
        "course": "intro-to-ai-safety",
        "module_key": "0a7e6a52-4a0b-4d8e-8f21-6c0d1e2f3a01",
        "content_id": "1b2c3d4e-5f60-4718-8293-a4b5c6d7e801",
    }
    first = await app_client.post("/api/progress/heartbeat", json=body, headers=ORIGIN)
    second = await app_client.post("/api/progress/heartbeat", json=body, headers=ORIGIN)
    assert first.json() == {"counted_seconds": 30, "saved_later": False}
    assert second.json() == {"counted_seconds": 0, "saved_later": False}  # another tab, or too soon
    row = await db.scalar(select(Progress).where(Progress.content_id == body["content_id"]))
    assert row.seconds == 30
    bad = await app_client.post(
        "/api/progress/heartbeat", json={**body, "content_id": "nope"}, headers=ORIGIN
    )
    assert bad.status_code == 404


async def test_anonymous_progress_joins_the_account_on_sign_in(app_client, db) -> None:
    await complete_all(app_client, "welcome", 2)
    code = await create_bot_code(db, discord_id="523456789012345678")
    response = await app_client.post(
        "/auth/code", data={"code": code, "next": COURSE}, headers=ORIGIN
    )
    assert response.status_code == 303
    progress = (await app_client.get("/api/courses/intro-to-ai-safety/progress")).json()
    welcome = next(m for m in progress["modules"] if m["slug"] == "welcome")
    assert welcome["status"] == "completed"
    rows = list(await db.scalars(select(Progress.actor)))
    assert rows and all(actor.startswith("u:") for actor in rows)


async def test_api_describes_course_and_module(app_client) -> None:
    course = (await app_client.get("/api/courses/intro-to-ai-safety")).json()
    assert [u["meeting"] for u in course["units"]] == [1, 2, None]
    module = (
        await app_client.get("/api/courses/intro-to-ai-safety/modules/specification-gaming")
    ).json()
    kinds = [s["kind"] for s in module["sections"]]
    assert kinds == ["page", "article", "article"]
    excerpts = [seg for seg in module["sections"][1]["segments"] if seg["kind"] == "excerpt"]
    assert len(excerpts) == 3 and excerpts[1]["omitted_html"]
    schema = (await app_client.get("/api/openapi.json")).json()
    assert "/api/progress/heartbeat" in schema["paths"]
    missing = await app_client.get("/api/courses/nope")
    assert missing.status_code == 404


async def test_the_section_drawn_once_is_drawn_again_after_a_content_push(
    tmp_path, client_factory
) -> None:
    """The section's part of the module page is drawn once per content snapshot and
    reused for every reader; the readers' own parts (done marks) are not cached with it,
    and a new snapshot brings new text."""
    from lens.content.service import sync_content
    from lens.content.sources import FolderSource
    from lens.db.engine import unit_of_work

    root = tmp_path / "course"
    shutil.copytree(Path(__file__).parents[2] / "examples" / "course", root)
    page = "/course/intro-to-ai-safety/welcome?s=1"
    async with client_factory(CONTENT_DIR=str(root)) as client:
        first = await client.get(page)
        assert "for an hour" in first.text and "✓" not in first.text
        content_id = re.search(r'name="content_id" value="([^"]+)"', first.text).group(1)
        marked = await client.post(
            "/course/intro-to-ai-safety/welcome/complete", data={"content_id": content_id}
        )
        assert marked.status_code == 303
        again = await client.get(page)
        assert "for an hour" in again.text and 'aria-label="done"' in again.text
        mine = dict(client.cookies)
        client.cookies.clear()  # another visitor: the same section, without the mark
        stranger = await client.get(page)
        assert "for an hour" in stranger.text and 'aria-label="done"' not in stranger.text
        client.cookies.clear()
        client.cookies.update(mine)

        welcome = root / "modules" / "welcome.md"
        welcome.write_text(welcome.read_text().replace("for an hour", "for ninety minutes"))
        app = client.app
        async with unit_of_work(app.state.lens.sessionmaker) as session:
            assert (await sync_content(session, source=FolderSource(root))).changed
        assert "for an hour" in (await client.get(page)).text  # until this process reloads
        assert await app.state.content.refresh()
        new = await client.get(page)
        assert "for ninety minutes" in new.text and "for an hour" not in new.text
        assert 'aria-label="done"' in new.text


async def test_marks_on_the_module_page_of_a_served_database(
    dialect, tmp_path, make_settings
) -> None:
    """The module page's own read as deployed (on PostgreSQL straight through the
    driver, outside any transaction): a reader sees their marks, and only theirs."""
    import httpx

    from lens.app import create_app
    from lens.db import migrate
    from lens.db.engine import create_engine
    from tests.conftest import fresh_database

    page = "/course/intro-to-ai-safety/welcome?s=1"
    async with fresh_database(dialect, tmp_path) as url:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()
        app = create_app(
            make_settings(DATABASE_URL=url, LENS_RUN_WORKER="false"), configure_logs=False
        )
        async with app.router.lifespan_context(app):

            def visitor() -> httpx.AsyncClient:
                transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                return httpx.AsyncClient(transport=transport, base_url="http://lens.test")

            async with visitor() as reader, visitor() as stranger:
                first = await reader.get(page)
                assert 'aria-label="done"' not in first.text
                content_id = re.search(r'name="content_id" value="([^"]+)"', first.text)
                assert content_id is not None
                marked = await reader.post(
                    "/course/intro-to-ai-safety/welcome/complete",
                    data={"content_id": content_id.group(1)},
                    headers=ORIGIN,
                )
                assert marked.status_code == 303
                assert 'aria-label="done"' in (await reader.get(page)).text
                assert 'aria-label="done"' not in (await stranger.get(page)).text


async def test_the_module_page_reads_its_address_as_fastapi_would(app_client) -> None:
    # The module page is a plain route (lens.web.query): the same values and the same 422
    # as the FastAPI routes around it, on both the course route and the one without.
    for base in (f"{COURSE}/goals-and-means", "/module/goals-and-means"):
        second = await app_client.get(f"{base}?s=2")
        assert second.status_code == 200
        assert 'aria-current="step"' in second.text
        current = re.search(r'<li class="current[^"]*">\s*<a href="\?s=(\d+)"', second.text)
        assert current is not None and current.group(1) == "2"
        assert (await app_client.get(f"{base}?s=%202")).status_code == 200
        assert 'href="?s=2" aria-current="step"' in (await app_client.get(f"{base}?s=2.0")).text
        for bad_number in ("2.5", "1e3", ""):
            assert (await app_client.get(f"{base}?s={bad_number}")).status_code == 422
        page = await app_client.get(f"{base}?s=two")
        assert page.status_code == 422 and "Please fix: s:" in page.text
        assert (await app_client.get(f"{base}?done=maybe")).status_code == 422
        for flag in ("1", "true", "yes", "on"):
            assert "Module completed" in (await app_client.get(f"{base}?done={flag}")).text
        for flag in ("0", "false", "no", "off"):
            assert "Module completed" not in (await app_client.get(f"{base}?done={flag}")).text
    # No section 99: the last one, as before.
    last = await app_client.get(f"{COURSE}/goals-and-means?s=99")
    assert last.status_code == 200
