"""Reading the example course in a real browser, on a desktop and on a phone."""

from __future__ import annotations

import pytest

from tests.fixtures.browser import DESKTOP, PHONE, LiveServer, OpenPage, goto, horizontal_overflow

pytestmark = pytest.mark.browser


async def read_welcome_module(page, live_server: LiveServer) -> None:
    await goto(page, live_server.url("/"))
    assert await page.locator("h1").count() == 1
    await page.get_by_role("link", name="See the whole course").click()
    await page.get_by_role("heading", name="Introduction to AI Safety", level=1).wait_for()
    assert await horizontal_overflow(page) <= 0
    await page.get_by_role("link", name="Welcome to the course", exact=True).click()
    await page.get_by_role("heading", name="How this course works").wait_for()
    assert await page.locator("h1").count() == 1
    stepper = page.get_by_role("navigation", name="Sections")
    assert await stepper.get_by_role("link").count() == 2
    # With no model configured the chat segment says so; the rest of the page works.
    placeholder = page.locator("aside.chat-placeholder").first
    assert "The tutor is not set up on this site" in await placeholder.inner_text()
    assert await horizontal_overflow(page) <= 0
    await page.get_by_role("button", name="Mark complete and continue").click()
    await page.get_by_role("heading", name="A first question").wait_for()
    assert "✓" in await stepper.get_by_role("link").first.inner_text()
    await page.get_by_role("button", name="Mark complete").click()
    await page.get_by_role("heading", name="Module completed").wait_for()
    await page.get_by_role("link", name="Next module: Goals and means").wait_for()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_read_a_module_to_the_end(live_server: LiveServer, open_page: OpenPage, viewport):
    page = await open_page(viewport)
    await read_welcome_module(page, live_server)
    await goto(page, live_server.url("/course/intro-to-ai-safety"))
    entry = page.locator("li.module-entry", has_text="Welcome to the course")
    assert "completed" in await entry.locator(".status").inner_text()
    assert (
        "1 of 2 required modules completed" in await page.locator("section.unit").first.inner_text()
    )
    await page.get_by_role("link", name="Continue: Goals and means").wait_for()


async def test_article_and_video_sections(live_server: LiveServer, open_page: OpenPage):
    page = await open_page(DESKTOP)
    await goto(page, live_server.url("/course/intro-to-ai-safety/specification-gaming?s=2"))
    assert await page.locator("blockquote.excerpt").count() == 3
    omitted = page.locator("details.omitted").first
    assert not await omitted.locator(".prose").is_visible()
    await omitted.locator("summary").click()
    assert await omitted.locator(".prose").is_visible()
    await page.get_by_role("link", name="Read the original").wait_for()
    await goto(page, live_server.url("/course/intro-to-ai-safety/goals-and-means?s=2"))
    frame = page.locator(".video-frame iframe").first
    src = await frame.get_attribute("src")
    assert "youtube-nocookie.com/embed/LensExample1?start=0&end=38" in src
    await page.get_by_role("link", name="Watch the full video").first.wait_for()
    transcript = page.locator("details.transcript").first
    await transcript.locator("summary").click()
    assert "fetch a coffee" in await transcript.inner_text()


async def test_anonymous_progress_is_kept_after_signing_in(
    live_server: LiveServer, open_page: OpenPage
):
    page = await open_page(PHONE)
    await read_welcome_module(page, live_server)
    await goto(page, live_server.url("/auth/signin?next=/course/intro-to-ai-safety"))
    await page.get_by_label("E-mail address").fill("reader@example.org")
    await page.get_by_role("button", name="E-mail me a sign-in link").click()
    await page.get_by_role("link", name="outbox").click()
    await (
        page.locator("article.outbox-email", has_text="reader@example.org")
        .first.get_by_role("link", name="Sign in to Lens")
        .click()
    )
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/course/intro-to-ai-safety")
    assert "reader" in await page.locator("#signin-slot").inner_text()
    entry = page.locator("li.module-entry", has_text="Welcome to the course")
    assert "completed" in await entry.locator(".status").inner_text()


async def test_heartbeats_while_the_reader_is_active(live_server: LiveServer, open_page: OpenPage):
    page = await open_page(DESKTOP)
    await page.clock.install()
    beats: list[dict[str, str]] = []
    counted: list[int] = []

    async def on_response(response) -> None:
        if response.url.endswith("/api/progress/heartbeat"):
            beats.append(response.request.post_data_json)
            counted.append((await response.json())["counted_seconds"])

    page.on("response", on_response)

    async def beats_reach(n: int) -> None:
        # The fetch itself runs on real time: wait for it (a busy machine is slow).
        for _ in range(100):
            if len(counted) >= n:
                return
            await page.wait_for_timeout(50)
        raise AssertionError(f"{len(counted)} heartbeats, expected {n}")

    await goto(page, live_server.url("/course/intro-to-ai-safety/welcome"))
    await page.mouse.move(10, 10)
    await page.clock.run_for(31_000)
    await beats_reach(1)
    assert len(beats) == 1
    article = page.locator("article.section")
    assert beats[0] == {
        "course": "intro-to-ai-safety",
        "module_key": await article.get_attribute("data-module"),
        "content_id": await article.get_attribute("data-content"),
    }
    assert counted == [30]
    # Still reading (within two minutes of the last activity): 60, 90, 120 s count.
    await page.clock.run_for(90_000)
    await beats_reach(4)
    assert len(beats) == 4
    # Nothing done for over two minutes: the reader has stepped away, no time counted.
    await page.clock.run_for(90_000)
    await page.wait_for_timeout(300)
    assert len(beats) == 4
    # Back at it: beats resume.
    await page.mouse.move(20, 20)
    await page.clock.run_for(30_000)
    await beats_reach(5)
    assert len(beats) == 5
    # A hidden tab does not count, even with recent activity.
    await page.mouse.move(30, 30)
    await page.evaluate(
        """() => Object.defineProperty(document, "visibilityState",
                                       {configurable: true, get: () => "hidden"})"""
    )
    await page.clock.run_for(60_000)
    await page.wait_for_timeout(300)
    assert len(beats) == 5
