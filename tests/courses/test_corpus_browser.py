"""The corpus vault's course in a real browser: one module is unavailable, every other
one opens, on a desktop and on a phone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.browser import (
    DESKTOP,
    LiveServer,
    OpenPage,
    goto,
    horizontal_overflow,
    require_chromium,
    serve_lens,
)

pytestmark = pytest.mark.browser

CORPUS = Path(__file__).parents[1] / "content" / "corpus"
COURSE = "/course/agi-safety-fundamentals"
PHONE_390 = {"width": 390, "height": 844}
# The modules the course names that can be served: title, and words from its first
# section (or what a module without sections says).
MODULES = [
    ("Welcome to the course", "The lighthouse keeper does not count ships"),
    ("Goals and proxies", "A thermostat wants nothing"),
    ("When the target is not the goal", "We rarely can write down what we want."),
    ("Reward hacking, the older module", "A cleaning robot rewarded for not seeing mess"),
    ("Optional reading group", "This module has no sections yet."),
    ("Where to go from here", "the best way to keep up is to read one paper a week"),
]


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()
    with pytest.MonkeyPatch.context() as env:
        # serve_lens builds its Settings from the environment: point it at the vault.
        env.setenv("CONTENT_DIR", str(CORPUS))
        with serve_lens(tmp_path_factory.mktemp("corpus-browser")) as server:
            env.undo()  # read at start-up; nothing else should see it
            yield server


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE_390], ids=["desktop", "phone"])
async def test_the_course_shows_the_unavailable_module_and_opens_the_others(
    corpus_server: LiveServer, open_page: OpenPage, viewport: dict[str, int]
) -> None:
    page = await open_page(viewport)
    await goto(page, corpus_server.url(COURSE))
    await page.get_by_role("heading", name="AGI Safety Fundamentals", level=1).wait_for()
    assert await horizontal_overflow(page) <= 0
    unavailable = page.locator("li.module-entry.unavailable")
    assert await unavailable.count() == 1
    assert "governance-basics" in await unavailable.inner_text()
    assert await unavailable.locator(".status").inner_text() == "unavailable"
    assert await unavailable.get_by_role("link").count() == 0
    third = page.locator("section.unit").nth(2)
    assert "0 of 1 required modules completed (1 not available yet)" in await third.inner_text()
    assert await page.locator("li.module-entry").count() == len(MODULES) + 1

    for title, words in MODULES:
        await goto(page, corpus_server.url(COURSE))
        await page.get_by_role("link", name=title, exact=True).click()
        await page.get_by_role("heading", name=title, level=1).wait_for()
        assert words in await page.locator("main").inner_text(), title
        assert await horizontal_overflow(page) <= 0, title
