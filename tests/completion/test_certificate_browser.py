"""A finished participant finds their certificate from "My course", downloads its PDF,
and the page reads well on a phone and a desktop (screenshots are kept in the test's
temporary folder for a look)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from lens.completion import certificates
from lens.db.engine import create_engine, create_sessionmaker
from lens.meetings.models import Attendance, Meeting
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
    with serve_lens(tmp_path_factory.mktemp("certificates")) as live:
        yield live


async def test_a_finished_participant_downloads_the_pdf(
    server: LiveServer, open_page: OpenPage, tmp_path
) -> None:
    engine = create_engine(server.database_url)
    async with create_sessionmaker(engine)() as db:
        w = await running(db, completion_meetings=1, completion_modules="none")
        me = w.tue_people[0]
        user = await db.get(User, me.user_id)
        user.nickname = "Ada María Lovelace-Byron"
        first = await db.scalar(
            select(Meeting).where(Meeting.group_id == w.tue.id, Meeting.number == 1)
        )
        db.add(Attendance(meeting_id=first.id, signup_id=me.id, status="present"))
        w.cohort.status = "finished"
        await db.flush()
        await certificates.issue(
            db, cohort=w.cohort, content=None, course_title="Introduction to AI Safety", by=None
        )
        await db.commit()
        user_id = user.id
    await engine.dispose()

    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = await open_page(viewport)
        await page.context.add_cookies([server.session_cookie(user_id)])
        await goto(page, server.url("/my-course"))
        await page.get_by_role("link", name="see it, download the PDF, add it to LinkedIn").click()
        await page.get_by_role("heading", name="Certificate of completion").wait_for()
        assert "Ada María Lovelace-Byron" in await page.locator(".cert-name").inner_text()
        assert await horizontal_overflow(page) <= 0
        await page.screenshot(path=str(tmp_path / f"certificate-{name}.png"), full_page=True)
        async with page.expect_download() as download_info:
            await page.get_by_role("link", name="Download the PDF").click()
        download = await download_info.value
        saved = tmp_path / f"certificate-{name}.pdf"
        await download.save_as(saved)
        data = saved.read_bytes()
        assert data.startswith(b"%PDF") and len(data) > 5000
        assert download.suggested_filename == "certificate-Ada-Mar-a-Lovelace-Byron.pdf" or (
            download.suggested_filename.startswith("certificate-Ada")
        )
