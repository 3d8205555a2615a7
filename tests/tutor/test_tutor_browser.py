"""Asking the tutor in a real browser: streamed reply, reload, history."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.browser import PHONE, LiveServer, OpenPage, goto, require_chromium, serve_lens
from tests.tutor.fake_model import FakeModel

pytestmark = pytest.mark.browser

MODULE = "/course/intro-to-ai-safety/welcome"


@pytest.fixture(scope="module")
def tutor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()
    model = FakeModel(words=["Curiosity ", "is ", "a ", "**great** ", "start."], delay=0.15)
    with serve_lens(tmp_path_factory.mktemp("tutor"), chat_model=model) as server:
        yield server


async def test_ask_see_the_reply_stream_then_history_after_reload(
    tutor_server: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(PHONE)
    await goto(page, tutor_server.url(MODULE))
    tutor = page.get_by_role("region", name="Tutor").first
    box = tutor.get_by_label("Message to the tutor")
    await box.fill("I am curious about AI.")
    await box.press("Enter")
    reply = tutor.locator(".tutor-assistant").last
    # While streaming, part of the reply is already there and the stop button shows.
    await tutor.get_by_role("button", name="Stop").wait_for()
    await page.wait_for_function(
        "() => { const r = document.querySelector('.tutor-assistant .prose');"
        " return r && r.textContent.length > 0 && !r.textContent.includes('start.'); }"
    )
    await reply.locator("strong", has_text="great").wait_for()  # done: Markdown rendered
    await tutor.get_by_role("button", name="Stop").wait_for(state="hidden")
    assert "I am curious about AI." in await tutor.locator(".tutor-user").first.inner_text()

    await page.reload()
    tutor = page.get_by_role("region", name="Tutor").first
    await tutor.locator(".tutor-assistant strong", has_text="great").wait_for()
    assert await tutor.locator(".tutor-msg").count() == 2


async def test_shift_enter_adds_a_line(tutor_server: LiveServer, open_page: OpenPage) -> None:
    page = await open_page(PHONE)
    await goto(page, tutor_server.url(MODULE))
    box = page.get_by_role("region", name="Tutor").first.get_by_label("Message to the tutor")
    await box.type("line one")
    await box.press("Shift+Enter")
    await box.type("line two")
    assert await box.input_value() == "line one\nline two"
