"""On a phone, an admin finds a person from the admin home, opens their page and makes
them an admin (confirming first)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from lens.db.engine import create_engine, create_sessionmaker
from lens.users.models import User
from tests.fixtures.browser import (
    PHONE,
    LiveServer,
    OpenPage,
    goto,
    horizontal_overflow,
    require_chromium,
    serve_lens,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()
    with serve_lens(tmp_path_factory.mktemp("people")) as live:
        yield live


async def test_an_admin_finds_someone_on_a_phone_and_makes_them_an_admin(
    server: LiveServer, open_page: OpenPage
) -> None:
    engine = create_engine(server.database_url)
    maker = create_sessionmaker(engine)
    async with maker() as session, session.begin():
        admin = User(nickname="Root", email="root@example.org", is_admin=True)
        grace = User(
            nickname="Grace Hopper",
            email="grace.hopper@navy.example",
            discord_id="300000000000000001",
            discord_username="amazing_grace",
        )
        others = [User(nickname=f"Someone {i}", email=f"s{i}@example.org") for i in range(5)]
        session.add_all([admin, grace, *others])
        await session.flush()
        admin_id, grace_id = admin.id, grace.id

    page = await open_page(PHONE)
    await page.context.add_cookies([server.session_cookie(admin_id)])
    await goto(page, server.url("/admin"))
    await page.get_by_role("link", name="People").click()
    await page.get_by_role("heading", name="People", level=1).wait_for()
    await page.get_by_label("Name, e-mail or Discord name").fill("AMAZING")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_text("1 person matching").wait_for()
    assert await horizontal_overflow(page) <= 0
    await page.get_by_role("link", name="Grace Hopper").click()

    await page.get_by_role("heading", name="Grace Hopper", level=1).wait_for()
    assert page.url == server.url(f"/admin/users/{grace_id}")
    assert await horizontal_overflow(page) <= 0
    await page.get_by_text("linked: amazing_grace").wait_for()
    make = page.get_by_role("button", name="Make admin")
    # The confirmation is required: the browser will not send the form without it.
    await make.click()
    assert await page.evaluate("document.querySelector('input[name=confirm]:invalid') !== null")
    async with maker() as session:
        assert not await session.scalar(select(User.is_admin).where(User.id == grace_id))
    await page.get_by_label("Yes, make Grace Hopper an admin").check()
    await make.click()
    await page.get_by_text("Grace Hopper is now an admin.").wait_for()
    assert await page.get_by_role("button", name="Remove admin role").is_visible()
    assert await horizontal_overflow(page) <= 0
    async with maker() as session:
        assert await session.scalar(select(User.is_admin).where(User.id == grace_id))
    await engine.dispose()
