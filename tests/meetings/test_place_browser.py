"""A facilitator sets the group's call link on a phone; a member finds it on the group
page as a link."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from lens.cohorts.models import Cohort, Group, GroupMember, Signup
from lens.db.base import utcnow
from lens.db.engine import create_engine, create_sessionmaker
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
CALL = "https://meet.example.org/abc-defg-hij?pwd=x1&lang=en"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()
    with serve_lens(tmp_path_factory.mktemp("place")) as live:
        yield live


@pytest.fixture(scope="module")
async def group(server: LiveServer) -> AsyncIterator[dict[str, int]]:
    """An active group: Fiona facilitates, Mia is a member; meetings two months ahead."""
    engine = create_engine(server.database_url)
    async with create_sessionmaker(engine)() as session:
        day = utcnow().date() + timedelta(days=60)
        cohort = Cohort(
            course_slug="intro-to-ai-safety", name="Spring cohort",
            start_date=day + timedelta(days=(7 - day.weekday()) % 7),
            meetings=3, meeting_minutes=60, min_group_size=2, max_group_size=8,
            status="running",
        )  # fmt: skip
        session.add(cohort)
        await session.flush()
        group = Group(cohort_id=cohort.id, number=1, start_slot=MONDAY_18_UTC, status="active")
        session.add(group)
        await session.flush()
        ids = {"group": group.id}
        for name, role in (("Fiona", "facilitator"), ("Mia", "participant")):
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


async def test_a_facilitator_sets_the_call_link_on_a_phone(
    server: LiveServer, group: dict[str, int], open_page: OpenPage
) -> None:
    page_url = server.url(f"/groups/{group['group']}")
    lead = await open_page(PHONE)
    await lead.context.add_cookies([server.session_cookie(group["Fiona"])])
    await goto(lead, page_url)
    form = lead.locator("#place")
    call = form.get_by_label("Call link")
    assert await call.is_visible()
    assert await horizontal_overflow(lead) <= 0

    # A wrong link first: the message names the field, what was typed stays.
    await call.fill("javascript:alert(1)")
    await form.get_by_label("Place").fill("Room 2.14, Library")
    await form.get_by_role("button", name="Save where you meet").click()
    error = lead.locator("#call_url-error")
    await error.wait_for()
    assert "Call link: only web addresses starting with https://" in await error.inner_text()
    assert await lead.locator("#call_url").input_value() == "javascript:alert(1)"
    assert await lead.locator("#location").input_value() == "Room 2.14, Library"
    assert await horizontal_overflow(lead) <= 0

    await lead.locator("#call_url").fill(CALL)
    await lead.locator("#call_url").press("Enter")  # submits, as a phone keyboard's Go
    await lead.wait_for_url("**?place=saved#place")
    await lead.get_by_role("status").filter(has_text="Saved").wait_for()
    assert await horizontal_overflow(lead) <= 0

    member = await open_page(PHONE)
    await member.context.add_cookies([server.session_cookie(group["Mia"])])
    await goto(member, page_url)
    link = member.get_by_role("link", name=CALL)
    assert await link.get_attribute("href") == CALL
    assert await link.is_visible()
    await member.get_by_text("Room 2.14, Library").wait_for()
    assert await member.locator("#place").count() == 0  # members see it, not the form
    assert await horizontal_overflow(member) <= 0
