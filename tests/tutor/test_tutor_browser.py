"""Asking the tutor in a real browser: streamed reply, reload, history."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from lens.errors import IntegrationUnavailable
from lens.integrations.llm.errors import ProviderAccountProblem
from lens.integrations.llm.transcription import Transcript
from tests.fixtures.browser import PHONE, LiveServer, OpenPage, goto, require_chromium, serve_lens
from tests.tutor.fake_model import FakeModel

pytestmark = pytest.mark.browser

MODULE = "/course/intro-to-ai-safety/welcome"


@dataclass
class FakeTranscriber:
    received: list[tuple[int, str, str]] = field(default_factory=list)

    async def transcribe(self, *, audio: bytes, filename: str, content_type: str) -> Transcript:
        self.received.append((len(audio), filename, content_type))
        return Transcript(text="What is reward hacking?", seconds=2.0, cost_usd=0.0002)


TRANSCRIBER = FakeTranscriber()
MODEL = FakeModel(words=["Curiosity ", "is ", "a ", "**great** ", "start."], delay=0.15)


@pytest.fixture(scope="module")
def tutor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()
    with serve_lens(
        tmp_path_factory.mktemp("tutor"), chat_model=MODEL, transcriber=TRANSCRIBER
    ) as server:
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


async def test_speak_a_question_into_the_box(tutor_server: LiveServer, open_page: OpenPage) -> None:
    page = await open_page(PHONE)
    await goto(page, tutor_server.url(MODULE))
    tutor = page.get_by_role("region", name="Tutor").first
    await tutor.get_by_role("button", name="Speak").click()
    stop = tutor.get_by_role("button", name="Stop recording")
    await stop.wait_for()
    assert await stop.get_attribute("aria-pressed") == "true"
    await page.wait_for_timeout(700)  # Chromium's synthetic microphone plays a beep
    await stop.click()
    box = tutor.get_by_label("Message to the tutor")
    await page.wait_for_function(
        "() => document.querySelector('.tutor textarea').value.includes('reward hacking')"
    )
    assert await box.input_value() == "What is reward hacking?"  # for the student to check
    assert await tutor.locator(".tutor-msg").count() == 0  # nothing sent by itself
    size, filename, content_type = TRANSCRIBER.received[-1]
    assert size > 0 and filename == "speech.webm" and content_type.startswith("audio/webm")


@pytest.mark.parametrize(
    ("failure", "retry_shown"),
    [
        (IntegrationUnavailable("the vendor is down"), True),
        (ProviderAccountProblem("insufficient_quota"), False),  # asking again cannot help
    ],
    ids=["outage", "account-problem"],
)
async def test_a_failed_reply_offers_retry_only_when_it_can_help(
    tutor_server: LiveServer,
    open_page: OpenPage,
    failure: Exception,
    retry_shown: bool,
) -> None:
    MODEL.fail_after, MODEL.fail_with = 0, failure
    try:
        page = await open_page(PHONE)
        await goto(page, tutor_server.url(MODULE))
        tutor = page.get_by_role("region", name="Tutor").first
        box = tutor.get_by_label("Message to the tutor")
        await box.fill("Why does this fail?")
        await box.press("Enter")
        error = tutor.locator(".tutor-error")
        await error.wait_for()
        assert await error.inner_text()
        assert await tutor.locator(".tutor-retry").is_visible() is retry_shown
    finally:
        MODEL.fail_after, MODEL.fail_with = None, None
