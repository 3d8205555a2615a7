"""A member answers for the group's meetings on a phone, by touch and by keyboard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from lens.cohorts.models import Cohort, Group, GroupMember, Signup
from lens.db.base import utcnow
from lens.db.engine import create_engine, create_sessionmaker
from lens.meetings.models import Meeting, Rsvp
from lens.meetings.service import create_meetings
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

MONDAY_18_UTC = 36


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()
    with serve_lens(tmp_path_factory.mktemp("rsvp")) as live:
        yield live


@pytest.fixture(scope="module")
async def group(server: LiveServer) -> AsyncIterator[dict[str, int]]:
    """An active group (Fiona facilitates, Mia and Noor are members) with three meetings
    from a Monday about two months ahead."""
    engine = create_engine(server.database_url)
    async with create_sessionmaker(engine)() as session:
        day = utcnow().date() + timedelta(days=60)
        start = day + timedelta(days=(7 - day.weekday()) % 7)
        cohort = Cohort(
            course_slug="intro-to-ai-safety", name="Spring cohort", start_date=start,
            meetings=3, meeting_minutes=60, min_group_size=2, max_group_size=8,
            status="running",
        )  # fmt: skip
        session.add(cohort)
        await session.flush()
        group = Group(cohort_id=cohort.id, number=1, start_slot=MONDAY_18_UTC, status="active")
        session.add(group)
        await session.flush()
        ids = {"group": group.id}
        for name, role in (
            ("Fiona", "facilitator"),
            ("Mia", "participant"),
            ("Noor", "participant"),
        ):
            user = User(nickname=name, email=f"{name.lower()}@example.org", timezone="UTC")
            session.add(user)
            await session.flush()
            signup = Signup(
                cohort_id=cohort.id, user_id=user.id, role=role, status="grouped",
                timezone="UTC", max_groups=1,
                availability={"available": list(range(7 * 48)), "if_needed": []},
            )  # fmt: skip
            session.add(signup)
            await session.flush()
            session.add(GroupMember(group_id=group.id, signup_id=signup.id, role=role))
            ids[name] = user.id
        await session.flush()
        await create_meetings(session, cohort=cohort, group=group)
        await session.commit()
    yield ids
    await engine.dispose()


async def answers(server: LiveServer, user_id: int) -> dict[int, str]:
    engine = create_engine(server.database_url)
    async with create_sessionmaker(engine)() as session:
        rows = await session.execute(
            select(Meeting.number, Rsvp.status)
            .join(Meeting, Meeting.id == Rsvp.meeting_id)
            .where(Rsvp.user_id == user_id)
        )
        found = {number: status for number, status in rows.all()}
    await engine.dispose()
    return found


async def test_a_member_answers_on_a_phone(
    server: LiveServer, group: dict[str, int], open_page: OpenPage
) -> None:
    page = await open_page(PHONE)
    await page.context.add_cookies([server.session_cookie(group["Mia"])])
    await goto(page, server.url(f"/groups/{group['group']}"))
    assert await horizontal_overflow(page) <= 0

    first = page.locator("#meeting-1")
    await first.get_by_role("button", name="Attending", exact=True).click()
    await page.wait_for_url(f"**/groups/{group['group']}#meeting-1")
    first = page.locator("#meeting-1")
    await first.get_by_text("Your answer: Attending").wait_for()
    chosen = first.get_by_role("button", name="Attending", exact=True)
    assert await chosen.get_attribute("aria-pressed") == "true"
    assert await horizontal_overflow(page) <= 0

    # By keyboard: Tab from "Attending" of meeting 2 to "Maybe", then Enter.
    second = page.locator("#meeting-2")
    await second.get_by_role("button", name="Attending", exact=True).focus()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused == "Maybe"
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/groups/{group['group']}#meeting-2")
    await page.locator("#meeting-2").get_by_text("Your answer: Maybe").wait_for()

    assert await answers(server, group["Mia"]) == {1: "attending", 2: "tentative"}

    # The facilitator sees it, with names.
    lead = await open_page(PHONE)
    await lead.context.add_cookies([server.session_cookie(group["Fiona"])])
    await goto(lead, server.url(f"/groups/{group['group']}"))
    counts = lead.get_by_role("list", name="Answers for meeting 1")
    await counts.get_by_text("Attending: 1 (Mia)").wait_for()
    assert await horizontal_overflow(lead) <= 0
