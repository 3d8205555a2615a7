"""A participant's week in a real browser, on a phone: "My course" says what to read
before the next meeting; they read it, say they will come; after the meeting the
facilitator takes attendance from the pre-filled form; "My course" shows it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from lens.db.base import utcnow
from lens.db.engine import create_engine, create_sessionmaker
from lens.meetings.models import Meeting
from lens.users.models import User
from tests.fixtures.browser import (
    DESKTOP,
    PHONE,
    LiveServer,
    OpenPage,
    goto,
    horizontal_overflow,
    require_chromium,
    serve_lens,
)
from tests.fixtures.running import running

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()
    with serve_lens(tmp_path_factory.mktemp("my-course")) as live:
        yield live


async def _move_meeting_1(server: LiveServer, group_id: int, start) -> None:
    engine = create_engine(server.database_url)
    try:
        async with create_sessionmaker(engine)() as db:
            meetings = list(
                await db.scalars(
                    select(Meeting).where(Meeting.group_id == group_id).order_by(Meeting.number)
                )
            )
            for i, m in enumerate(meetings):
                m.starts_at = start + timedelta(days=7 * i)
                m.ends_at = m.starts_at + timedelta(hours=1)
            await db.commit()
    finally:
        await engine.dispose()


async def test_a_participants_week(server: LiveServer, open_page: OpenPage) -> None:
    engine = create_engine(server.database_url)
    async with create_sessionmaker(engine)() as db:
        w = await running(db)
        me = await db.get(User, w.tue_people[0].user_id)
        me.nickname, me.timezone = "Ada", "Europe/Berlin"
        facilitator = await db.get(User, w.fac_tue.user_id)
        ids = (w.tue.id, me.id, facilitator.id, w.tue_people[0].id)
        await db.commit()
    await engine.dispose()
    group_id, me_id, fac_id, signup_id = ids
    await _move_meeting_1(server, group_id, utcnow().replace(microsecond=0) + timedelta(days=2))

    page = await open_page(PHONE)
    await page.context.add_cookies([server.session_cookie(me_id)])
    await goto(page, server.url("/"))
    await page.get_by_role("link", name="My course").first.click()
    await page.get_by_role("heading", name="Next meeting:").wait_for()
    assert await horizontal_overflow(page) <= 0
    # Read before it: the first module, to its end.
    next_box = page.locator(".next-meeting")
    assert "not started" in await next_box.inner_text()
    await next_box.get_by_role("link", name="Welcome to the course").click()
    await page.get_by_role("button", name="Mark complete and continue").click()
    await page.get_by_role("button", name="Mark complete", exact=True).click()
    await page.get_by_role("heading", name="Module completed").wait_for()
    await goto(page, server.url("/my-course"))
    welcome = page.locator(".next-meeting li", has_text="Welcome to the course")
    assert "completed" in await welcome.inner_text()
    # They will come.
    await page.locator(".next-meeting").get_by_role("button", name="Attending", exact=True).click()
    await page.get_by_text("Your answer: Attending").wait_for()
    assert "Meetings attended: 0 of 4" in await page.locator(".standing").inner_text()

    # The meeting happened (an hour ago); the facilitator takes attendance on a phone.
    await _move_meeting_1(server, group_id, utcnow().replace(microsecond=0) - timedelta(hours=2))
    lead = await open_page(PHONE)
    await lead.context.add_cookies([server.session_cookie(fac_id)])
    await goto(lead, server.url(f"/groups/{group_id}"))
    await lead.get_by_role("link", name="take attendance for meeting 1").click()
    line = lead.locator(f"#attendance-{signup_id}")
    assert await line.get_by_label("Present").is_checked()  # pre-filled
    assert await horizontal_overflow(lead) <= 0
    await line.get_by_label("Late").check()
    await lead.get_by_role("button", name="Save attendance").click()
    await lead.get_by_role("status").get_by_text("Attendance saved.").wait_for()

    await goto(page, server.url("/my-course"))
    plan = page.locator("ol.meeting-plan li").first
    assert "Late" in await plan.inner_text()
    assert "Meetings attended: 1 of 4" in await page.locator(".standing").inner_text()
    desktop = await open_page(DESKTOP)
    await desktop.context.add_cookies([server.session_cookie(me_id)])
    await goto(desktop, server.url("/my-course"))
    assert await horizontal_overflow(desktop) <= 0
