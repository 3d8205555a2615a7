"""A running cohort in a real browser: an admin moves a member after approval and both
groups see it; a participant switches group; another visits a different group's meeting
once; someone left without a group sees an opening and takes it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from lens.cohorts.models import GroupMember
from lens.db.engine import create_engine, create_sessionmaker
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
from tests.fixtures.cohorts import evening
from tests.fixtures.running import THU, TUESDAY, running

pytestmark = pytest.mark.browser


@dataclass
class Cast:
    cohort: int
    tue: int
    thu: int
    admin: int
    fac_tue: int
    fac_thu: int
    mover: tuple[int, int, str]  # signup, user, name: Tuesday member an admin moves
    switcher: tuple[int, int, str]  # Thursday member who can also make Tuesdays
    guest: tuple[int, int, str]  # Thursday member who visits Tuesday's meeting 2 once
    waiting: tuple[int, int, str]  # unplaced, can make both


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()
    with serve_lens(tmp_path_factory.mktemp("running")) as live:
        yield live


@pytest.fixture(scope="module")
async def cast(server: LiveServer) -> AsyncIterator[Cast]:
    engine = create_engine(server.database_url)
    async with create_sessionmaker(engine)() as db:
        w = await running(db, max_group_size=5)
        names = {}
        for i, signup in enumerate(
            [*w.tue_people, *w.thu_people, w.flexible, w.fac_tue, w.fac_thu]
        ):
            user = await db.get(User, signup.user_id)
            user.nickname = f"Person{i}"
            user.timezone = signup.timezone
            names[signup.id] = user.nickname
        for thu in w.thu_people:  # both can also make Tuesday 19:00 Berlin (13:00 New York)
            thu.availability = {"available": [*THU, *evening(TUESDAY, 13, 2)], "if_needed": []}
        # The one the admin moves can also make Thursday 18:00 New York (Friday 00:00 Berlin).
        w.tue_people[0].availability = {
            "available": [*evening(TUESDAY, 19, 2), *evening(TUESDAY + 3, 0, 2)],
            "if_needed": [],
        }
        await db.commit()

        def who(signup) -> tuple[int, int, str]:
            return (signup.id, signup.user_id, names[signup.id])

        found = Cast(
            cohort=w.cohort.id,
            tue=w.tue.id,
            thu=w.thu.id,
            admin=w.admin.id,
            fac_tue=w.fac_tue.user_id,
            fac_thu=w.fac_thu.user_id,
            mover=who(w.tue_people[0]),
            switcher=who(w.thu_people[0]),
            guest=who(w.thu_people[1]),
            waiting=who(w.flexible),
        )
    yield found
    await engine.dispose()


async def _group_of(server: LiveServer, signup_id: int) -> int | None:
    engine = create_engine(server.database_url)
    try:
        async with create_sessionmaker(engine)() as db:
            return await db.scalar(
                select(GroupMember.group_id).where(GroupMember.signup_id == signup_id)
            )
    finally:
        await engine.dispose()


async def test_an_admin_moves_a_member_and_both_groups_see_it(
    server: LiveServer, cast: Cast, open_page: OpenPage
) -> None:
    page = await open_page(DESKTOP)
    await page.context.add_cookies([server.session_cookie(cast.admin)])
    await goto(page, server.url(f"/admin/cohorts/{cast.cohort}/grouping"))
    assert await page.get_by_role("heading", name="problem").count() == 0
    signup, _, name = cast.mover
    row = page.locator(f"#person-{signup}")
    await row.get_by_role("link", name=f"Move {name} to another group").click()
    await page.get_by_role("radio", name="Group 2 ·").check()
    await page.get_by_role("button", name="Review the change…").click()
    await page.get_by_role("heading", name="What happens when you confirm").wait_for()
    assert f"{name} leaves Group 1 for Group 2" in await page.content()
    await page.get_by_label("Why").fill("asked to move")
    await page.get_by_role("button", name="Confirm").click()
    await page.get_by_role("status").get_by_text("Changed.").wait_for()
    log = page.locator("#log-heading + div")
    assert "asked to move" in await log.inner_text()
    assert await _group_of(server, signup) == cast.thu

    # Each group's facilitator sees it on their group's page.
    for facilitator, group, present in (
        (cast.fac_thu, cast.thu, True),
        (cast.fac_tue, cast.tue, False),
    ):
        view = await open_page(PHONE)
        await view.context.add_cookies([server.session_cookie(facilitator)])
        await goto(view, server.url(f"/groups/{group}"))
        assert (name in await view.locator("main").inner_text()) is present, group
        assert await horizontal_overflow(view) <= 0

    # The admin's page works on a phone too.
    phone = await open_page(PHONE)
    await phone.context.add_cookies([server.session_cookie(cast.admin)])
    await goto(phone, server.url(f"/admin/cohorts/{cast.cohort}/grouping"))
    assert await horizontal_overflow(phone) <= 0


async def test_a_participant_switches_group(
    server: LiveServer, cast: Cast, open_page: OpenPage
) -> None:
    signup, user, _ = cast.switcher
    page = await open_page(PHONE)
    await page.context.add_cookies([server.session_cookie(user)])
    await goto(page, server.url(f"/cohorts/{cast.cohort}"))
    switch = page.locator("#switch")
    await switch.get_by_label("Group 1", exact=False).check()
    await switch.get_by_role("button", name="Switch").click()
    await page.get_by_role("status").get_by_text("You switched groups").wait_for()
    assert await _group_of(server, signup) == cast.tue
    await page.get_by_role("link", name="Your group's page").click()
    await page.get_by_role("heading", name="Group 1", exact=False).first.wait_for()
    assert await horizontal_overflow(page) <= 0


async def test_a_guest_visits_another_groups_meeting(
    server: LiveServer, cast: Cast, open_page: OpenPage
) -> None:
    _, user, name = cast.guest
    page = await open_page(PHONE)
    await page.context.add_cookies([server.session_cookie(user)])
    await goto(page, server.url(f"/cohorts/{cast.cohort}"))
    visit = page.locator("#visit")
    await visit.get_by_role("link", name="visit another group instead…").nth(1).click()
    await page.get_by_text("instead of your meeting 2").wait_for()
    await page.locator("#visit").get_by_label("Group 1, meeting 2", exact=False).check()
    await page.get_by_role("button", name="Visit as a guest").click()
    await page.get_by_role("status").get_by_text("You are a guest at that meeting").wait_for()
    assert "You visit Group 1, meeting 2" in await page.locator("#visit").inner_text()

    host = await open_page(DESKTOP)
    await host.context.add_cookies([server.session_cookie(cast.fac_tue)])
    await goto(host, server.url(f"/groups/{cast.tue}/meetings/2"))
    guests = host.locator("#guests")
    assert name in await guests.inner_text()


async def test_someone_waiting_sees_an_opening_and_takes_it(
    server: LiveServer, cast: Cast, open_page: OpenPage
) -> None:
    signup, user, _ = cast.waiting
    page = await open_page(PHONE)
    await page.context.add_cookies([server.session_cookie(user)])
    await goto(page, server.url("/groups"))
    assert "not in a group yet" in (await page.locator("main").inner_text())
    await goto(page, server.url(f"/cohorts/{cast.cohort}"))
    offers = page.get_by_role("group", name="Choose a group")
    assert await offers.get_by_role("radio").count() >= 1
    await page.get_by_role("button", name="Join this group").click()
    await page.get_by_role("status").get_by_text("You have joined your group").wait_for()
    assert await _group_of(server, signup) is not None
