"""Enrolling with availability painted by mouse and keyboard; an admin previews the
groups, moves a person, sees the broken rule, moves them back and approves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date

import pytest
from playwright.async_api import Page
from sqlalchemy import select, text

from lens.cohorts.models import Cohort, Signup
from lens.db.base import utcnow
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

pytestmark = pytest.mark.browser

MONDAY, THURSDAY = 0, 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()
    with serve_lens(tmp_path_factory.mktemp("enroll")) as live:
        yield live


@pytest.fixture(scope="module")
async def people(server: LiveServer) -> AsyncIterator[dict[str, int]]:
    """A January cohort; six people free on Monday 18:00-20:00 UTC and three on Thursday,
    a facilitator for each evening; a new student and an admin."""
    engine = create_engine(server.database_url)
    async with create_sessionmaker(engine)() as session:
        cohort = Cohort(
            course_slug="intro-to-ai-safety", name="Winter 2027", start_date=date(2027, 1, 11),
            meetings=6, meeting_minutes=60, min_group_size=3, max_group_size=8,
        )  # fmt: skip
        session.add(cohort)
        await session.flush()

        async def person(name: str, role: str, day: int, hour: int) -> None:
            user = User(nickname=name, email=f"{name.lower()}@example.org", timezone="UTC")
            session.add(user)
            await session.flush()
            first = day * 48 + hour * 2
            session.add(
                Signup(
                    cohort_id=cohort.id, user_id=user.id, role=role, status="enrolled",
                    timezone="UTC", max_groups=1,
                    availability={"available": list(range(first, first + 4)), "if_needed": []},
                    approved_at=utcnow() if role == "facilitator" else None,
                )
            )  # fmt: skip

        for n in range(6):
            await person(f"Mon{n}", "participant", MONDAY, 18)
        for n in range(3):
            await person(f"Thu{n}", "participant", THURSDAY, 18)
        await person("Fiona", "facilitator", MONDAY, 18)
        await person("Theo", "facilitator", THURSDAY, 18)
        student = User(email="sam@example.org")
        admin = User(email="root@example.org", nickname="Root", is_admin=True)
        session.add_all([student, admin])
        await session.commit()
        ids = {"cohort": cohort.id, "student": student.id, "admin": admin.id}
    yield ids
    await engine.dispose()


async def _center(page: Page, slot: int) -> tuple[float, float]:
    cell = page.locator(f'td[data-slot="{slot}"]')
    await cell.scroll_into_view_if_needed()
    box = await cell.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


async def test_enroll_painting_by_mouse_and_keyboard(
    server: LiveServer, people: dict[str, int], open_page: OpenPage
) -> None:
    page = await open_page(PHONE)
    await page.context.add_cookies([server.session_cookie(people["student"])])
    await goto(page, server.url("/enroll"))
    await page.wait_for_url(f"**/enroll/{people['cohort']}/profile")
    await page.get_by_label("Nickname").fill("Sam")
    await page.get_by_label("Time zone").fill("Europe/Berlin")
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_role("alert").get_by_text("Accept the terms").wait_for()  # says what to fix
    await page.get_by_label("I accept the terms").check()
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url("**/role")
    await page.get_by_label("Participant").check()
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url("**/availability")

    # Mouse: press on Monday 19:00 (Berlin) and drag down to 20:30.
    x2, y2 = await _center(page, MONDAY * 48 + 41)
    x, y = await _center(page, MONDAY * 48 + 38)
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x2, y2, steps=12)
    await page.mouse.up()
    status = page.locator("#hours-chosen")
    assert await status.inner_text() == "2 hours available, 0 hours if needed"

    # Keyboard: "if needed", from Monday 20:30 two days right, paint, Shift+Down twice,
    # then Down into the hidden late hours (they open) and Space.
    await page.get_by_label("If needed").check()
    await page.locator(f'td[data-slot="{MONDAY * 48 + 41}"]').focus()
    for key in ("ArrowRight", "ArrowRight", "Space", "Shift+ArrowDown", "Shift+ArrowDown"):
        await page.keyboard.press(key)
    await page.keyboard.press("ArrowDown")
    late = page.locator('tr[data-row="44"]')
    assert await late.is_visible()
    await page.keyboard.press("Space")
    assert await status.inner_text() == "2 hours available, 2 hours if needed"
    cell = page.locator(f'td[data-slot="{2 * 48 + 44}"]')
    assert await cell.get_attribute("aria-label") == "Wednesday 22:00, if needed"
    assert await page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0

    await page.get_by_role("button", name="Save availability").click()
    await page.wait_for_url("**/confirm")
    assert "2.0 hours available, 2.0 if needed, in Europe/Berlin" in await page.content()
    await page.get_by_role("button", name="Confirm enrollment").click()
    await page.get_by_text("You are enrolled").wait_for()

    engine = create_engine(server.database_url)
    async with create_sessionmaker(engine)() as session:
        signup = await session.scalar(select(Signup).where(Signup.user_id == people["student"]))
        assert signup is not None and signup.status == "enrolled"
        assert signup.availability == {
            "available": [38, 39, 40, 41],
            "if_needed": [2 * 48 + 41, 2 * 48 + 42, 2 * 48 + 43, 2 * 48 + 44],
        }
    await engine.dispose()


async def test_admin_previews_moves_and_approves(
    server: LiveServer, people: dict[str, int], open_page: OpenPage
) -> None:
    page = await open_page(DESKTOP)
    await page.context.add_cookies([server.session_cookie(people["admin"])])
    cohort = people["cohort"]
    await goto(page, server.url(f"/admin/cohorts/{cohort}/grouping"))
    await page.get_by_role("button", name="Run grouping").click()
    # The worker forms the groups; the page follows the run until they are there.
    await page.get_by_role("heading", name="Group 2", exact=False).wait_for(timeout=30_000)
    monday = page.locator("section.group-card", has_text="Mon 18:00 UTC")
    assert await monday.locator(".member-list li").count() >= 7  # facilitator + participants

    # Move Mon0 to the Thursday group: a broken rule, shown, and approval refused.
    mover = monday.locator("li", has_text="Mon0")
    await mover.get_by_role("link", name="Move Mon0").click()
    # The list says, per group, whether Mon0 can make its time.
    thursday_choice = page.locator("label.choice", has_text="Thu 18:00 UTC")
    assert "cannot make this time" in await thursday_choice.inner_text()
    await thursday_choice.get_by_role("radio").check()
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("heading", name="problem to fix before approving").wait_for()
    assert "cannot make this time" in await page.content()
    assert await page.get_by_role("button", name="Approve groups").is_disabled()

    # Back by dragging them onto the Monday group.
    thursday = page.locator("section.group-card", has_text="Thu 18:00 UTC")
    back = thursday.locator("li[data-signup]", has_text="Mon0")
    # The page's own drag handlers, driven by the events a drag fires (headless Chromium
    # has no system drag session for a pointer drag to start).
    target = page.locator("section.group-card", has_text="Mon 18:00 UTC")
    transfer = await page.evaluate_handle("() => new DataTransfer()")
    await back.dispatch_event("dragstart", {"dataTransfer": transfer})
    await target.dispatch_event("dragover", {"dataTransfer": transfer})
    assert "drop-target" in (await target.get_attribute("class") or "")
    async with page.expect_navigation():  # the drop posts the move
        await target.dispatch_event("drop", {"dataTransfer": transfer})
    await page.get_by_role("status").get_by_text("Changed").wait_for()
    assert await page.get_by_role("heading", name="problem to fix").count() == 0

    phone = await open_page(PHONE)
    await phone.context.add_cookies([server.session_cookie(people["admin"])])
    await goto(phone, server.url(f"/admin/cohorts/{cohort}/grouping"))
    assert await horizontal_overflow(phone) <= 0  # the preview works on a phone

    await page.get_by_label("I have checked the groups").check()
    await page.get_by_role("button", name="Approve groups").click()
    await page.get_by_text("Groups approved; the cohort is running.").wait_for()

    engine = create_engine(server.database_url)
    async with engine.connect() as conn:
        status = (
            await conn.execute(text(f"SELECT status FROM cohorts WHERE id={cohort}"))
        ).scalar()
        counts = dict(
            (await conn.execute(text("SELECT status, count(*) FROM signups GROUP BY status"))).all()
        )
    await engine.dispose()
    assert status == "running"
    # Everyone could make a group's time: all grouped, nobody left waiting.
    assert counts.get("enrolled", 0) == 0 and counts.get("unplaced", 0) == 0
    assert counts["grouped"] >= 11

    # The cohort page now offers its groups' Discord channels (no bot on this site: it says
    # so) and queues an update on request.
    await goto(phone, server.url(f"/admin/cohorts/{cohort}"))
    section = phone.locator("section#discord")
    await section.get_by_role("heading", name="Groups in Discord").wait_for()
    assert "The Discord bot is not configured" in await section.inner_text()
    await section.get_by_role("button", name="Update channels and events now").click()
    await phone.get_by_role("status").get_by_text("Queued").wait_for()
    assert await horizontal_overflow(phone) <= 0
