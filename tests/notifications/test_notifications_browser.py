"""A reminder reaches the (development) outbox; its unsubscribe link works in a phone
browser; the person turns the kind back on in their notification settings."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from lens.cohorts.models import Cohort, Group, GroupMember, Signup
from lens.db.base import utcnow
from lens.db.engine import create_engine, create_sessionmaker
from lens.integrations.email.models import OutboxEmail
from lens.meetings.models import Meeting
from lens.notifications.models import NotificationOptOut
from lens.notifications.service import meeting_subject, notify
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
    with serve_lens(tmp_path_factory.mktemp("notify")) as live:
        yield live


async def test_unsubscribe_from_an_email_and_turn_it_back_on(
    server: LiveServer, open_page: OpenPage
) -> None:
    engine = create_engine(server.database_url)
    maker = create_sessionmaker(engine)
    starts = utcnow() + timedelta(hours=23, minutes=50)
    async with maker() as session, session.begin():
        user = User(nickname="Ada", email="ada@example.org", timezone="Europe/Berlin")
        cohort = Cohort(
            course_slug="intro-to-ai-safety", name="Spring", start_date=date(2030, 1, 7),
            meetings=1, meeting_minutes=60, status="running",
        )  # fmt: skip
        session.add_all([user, cohort])
        await session.flush()
        signup = Signup(cohort_id=cohort.id, user_id=user.id, status="grouped",
                        timezone="Europe/Berlin", availability={})  # fmt: skip
        group = Group(cohort_id=cohort.id, number=1, start_slot=0, status="active")
        session.add_all([signup, group])
        await session.flush()
        session.add(GroupMember(group_id=group.id, signup_id=signup.id, role="participant"))
        meeting = Meeting(group_id=group.id, number=1, starts_at=starts,
                          ends_at=starts + timedelta(hours=1))  # fmt: skip
        session.add(meeting)
        await session.flush()
        await notify(
            session,
            kind="meeting_reminder_24h",
            user_ids=[user.id],
            subject=meeting_subject(meeting.id, starts),
            context={"meeting_id": meeting.id, "starts_at": starts.isoformat()},
            send_at=starts - timedelta(hours=24),
        )
        user_id = user.id
    # The server's own worker sends it, into the development outbox.
    text = None
    for _ in range(100):
        async with maker() as session:
            text = await session.scalar(select(OutboxEmail.text))
        if text:
            break
        await asyncio.sleep(0.1)
    assert text and "Group 1 meets tomorrow" in text
    link = re.search(r"Unsubscribe from these e-mails: (\S+)", text).group(1)
    assert link.startswith(server.base_url)

    page = await open_page(PHONE)
    await goto(page, link)
    await page.get_by_role("heading", name="Unsubscribe", level=1).wait_for()
    assert await horizontal_overflow(page) <= 0
    await page.get_by_role("button", name="Unsubscribe").click()
    await page.get_by_text("you will not get meeting reminders, a day before").wait_for()
    async with maker() as session:
        off = list(await session.scalars(select(NotificationOptOut.kind)))
    assert off == ["meeting_reminder_24h"]

    await page.context.add_cookies([server.session_cookie(user_id)])
    await goto(page, server.url("/account/notifications"))
    box = page.get_by_label("Meeting reminders, a day before by e-mail")
    assert not await box.is_checked()
    assert await page.get_by_label("Meeting reminders, an hour before by e-mail").is_checked()
    assert await horizontal_overflow(page) <= 0
    await box.check()
    await page.get_by_role("button", name="Save").click()
    await page.get_by_text("Saved.").wait_for()
    assert await page.get_by_label("Meeting reminders, a day before by e-mail").is_checked()
    async with maker() as session:
        assert list(await session.scalars(select(NotificationOptOut.kind))) == []
    await engine.dispose()
