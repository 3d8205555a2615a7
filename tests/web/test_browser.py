"""The pages as a person sees them: real HTTP, a real headless Chromium.

The app runs under uvicorn in a background thread (its own event loop) on a free
loopback port, with a fresh SQLite database; the browser is launched once per module.
Chromium is found through LENS_CHROMIUM, /usr/bin/chromium or PATH; without it these
tests skip locally and fail in CI (CI=true).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, Response, async_playwright

from lens.app import create_app
from lens.settings import Settings

pytestmark = pytest.mark.browser

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
SERVER_START_SECONDS = 30.0
SERVER_STOP_SECONDS = 30.0


# -- finding Chromium ------------------------------------------------------------------


def find_chromium() -> str | None:
    configured = os.environ.get("LENS_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    path = find_chromium()
    if path is not None:
        return path
    configured = os.environ.get("LENS_CHROMIUM")
    where = f"LENS_CHROMIUM={configured!r} is not a file" if configured else "not found"
    message = (
        f"Chromium {where} (looked at LENS_CHROMIUM, /usr/bin/chromium, and chromium / "
        "chromium-browser on PATH); install it (e.g. `apt-get install chromium`) or set "
        "LENS_CHROMIUM=/path/to/chromium"
    )
    if IN_CI:
        pytest.fail(message + "; CI requires the browser tests")
    pytest.skip(message)


# -- the app over real HTTP ------------------------------------------------------------


@dataclass
class LiveServer:
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()  # skip (or fail in CI) before starting a server nobody will use
    tmp = tmp_path_factory.mktemp("browser")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/b.db",
        LENS_VAR_DIR=str(tmp / "var"),
    )
    app = create_app(settings, configure_logs=False)

    # Bind the port here and hand the socket to uvicorn: no window in which another
    # process could take a port we only believed to be free.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="lens-live-server", daemon=True
    )
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base_url, server, thread)
        yield LiveServer(base_url)
    finally:
        server.should_exit = True
        thread.join(SERVER_STOP_SECONDS)
        sock.close()
    assert not thread.is_alive(), f"uvicorn did not stop within {SERVER_STOP_SECONDS}s"


def _wait_until_ready(base_url: str, server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    last = "no answer yet"
    with httpx.Client(base_url=base_url, timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if not thread.is_alive():
                pytest.fail("uvicorn exited during start-up (see the captured log)")
            if server.started:
                try:
                    response = client.get("/readyz")
                except httpx.TransportError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                else:
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
            time.sleep(0.05)
    pytest.fail(f"{base_url}/readyz did not answer 200 within {SERVER_START_SECONDS}s: {last}")


# -- the browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    """open_page(viewport, **context_options): a page in a fresh context, closed after."""
    contexts: list[BrowserContext] = []

    async def open_(viewport: dict[str, int] = PHONE, **options: Any) -> Page:
        context = await browser.new_context(viewport=viewport, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return await context.new_page()

    yield open_
    for context in contexts:
        await context.close()


async def goto(page: Page, url: str) -> Response:
    response = await page.goto(url)
    assert response is not None, f"no response for {url}"
    return response


async def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 = no sideways scroll)."""
    return int(await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


async def rect(page: Page, selector: str) -> dict[str, float]:
    box = await page.locator(selector).evaluate(
        "el => { const r = el.getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height,"
        " right: r.right, bottom: r.bottom}; }"
    )
    return {k: float(v) for k, v in box.items()}


# -- the tests -------------------------------------------------------------------------


async def test_home_on_a_phone_has_heading_brand_and_working_legal_links(
    live_server: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(PHONE)
    response = await goto(page, live_server.url("/"))
    assert response.status == 200
    assert "text/html" in response.headers["content-type"]

    await page.get_by_role("heading", level=1).wait_for()
    assert await page.get_by_role("heading", level=1).count() == 1
    brand = page.get_by_role("banner").get_by_role("link", name="Lens", exact=True)
    assert await brand.is_visible()
    assert await brand.get_attribute("href") == "/"
    assert await horizontal_overflow(page) <= 0, "the home page scrolls sideways at 360 px"
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    footer = page.get_by_role("contentinfo")
    for link_name, heading in (("Privacy", "Privacy"), ("Terms", "Terms of use")):
        await goto(page, live_server.url("/"))
        link = footer.get_by_role("link", name=link_name, exact=True)
        assert await link.is_visible(), f"footer link {link_name!r} is not visible at 360 px"
        async with page.expect_navigation() as navigation:
            await link.click()
        landed = await navigation.value
        assert landed is not None
        assert landed.status == 200, f"{link_name} link led to {landed.status} {landed.url}"
        assert await page.get_by_role("heading", level=1).inner_text() == heading
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], (
            f"the {heading!r} page scrolls sideways at 360 px"
        )


async def test_first_tab_reaches_a_visible_skip_link_that_moves_to_main(
    live_server: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(PHONE)
    await goto(page, live_server.url("/"))

    await page.keyboard.press("Tab")
    focused = page.locator(":focus")
    assert await focused.inner_text() == "Skip to content"
    box = await focused.bounding_box()
    assert box is not None, "the focused skip link has no box"
    assert box["width"] > 0
    assert box["height"] > 0
    assert box["x"] >= 0
    assert box["y"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"], f"skip link is off screen: {box}"
    assert box["y"] + box["height"] <= PHONE["height"], f"skip link is off screen: {box}"

    await page.keyboard.press("Enter")
    await page.wait_for_function("location.hash === '#main'")
    assert await page.evaluate("document.activeElement.id") == "main"


async def test_unknown_address_shows_a_404_page_that_leads_home(
    live_server: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(PHONE)
    response = await goto(page, live_server.url("/no-such-page"))
    assert response.status == 404
    assert "text/html" in response.headers["content-type"]
    heading = page.get_by_role("heading", level=1)
    assert await heading.inner_text() == "Not Found"
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], (
        "the 404 page scrolls sideways at 360 px"
    )

    home = page.get_by_role("link", name="Go to the start page")
    assert await home.is_visible()
    async with page.expect_navigation() as navigation:
        await home.click()
    landed = await navigation.value
    assert landed is not None
    assert landed.status == 200
    assert page.url == live_server.url("/")
    assert await page.get_by_role("heading", level=1).count() == 1


async def test_every_response_has_a_request_id_and_the_404_page_shows_it(
    live_server: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(PHONE)
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))

    for path in ("/", "/privacy", "/terms"):
        await goto(page, live_server.url(path))
    not_found = await goto(page, live_server.url("/no-such-page"))

    # Documents and the stylesheet they load all carry an id; each page gets its own.
    # (The stylesheet may come from the browser's cache later on, with its first id.)
    urls = {r.url.split("?", 1)[0] for r in responses}
    assert live_server.url("/static/lens.css") in urls, "the stylesheet was never loaded"
    page_ids = []
    for r in responses:
        request_id = await r.header_value("x-request-id")
        assert request_id, f"{r.status} {r.url} has no X-Request-ID"
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
        if r.request.resource_type == "document":
            page_ids.append(request_id)
    assert len(page_ids) == 4
    assert len(set(page_ids)) == 4, f"two pages share one request id: {page_ids}"

    shown = page.locator(".error-page").get_by_text("Reference:")
    assert await shown.is_visible()
    assert await shown.locator("code").inner_text() == await not_found.header_value("x-request-id")

    # An id set by a load balancer in front is kept, and is what the user can quote.
    upstream_id = "lb-7f3a9c21-e2e"
    page = await open_page(PHONE, extra_http_headers={"X-Request-ID": upstream_id})
    not_found = await goto(page, live_server.url("/no-such-page"))
    assert await not_found.header_value("x-request-id") == upstream_id
    assert await page.locator(".error-page code").inner_text() == upstream_id


async def test_desktop_layout_has_one_header_row_and_a_centred_column(
    live_server: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(DESKTOP)
    response = await goto(page, live_server.url("/"))
    assert response.status == 200
    assert await horizontal_overflow(page) <= 0

    brand = await rect(page, ".site-header .brand")
    nav = await rect(page, ".site-header .site-nav")
    slot = await rect(page, "#signin-slot")
    row = await rect(page, ".site-header .header-row")
    # One row: brand, nav and sign-in slot share a vertical band, left to right.
    for name, box in (("nav", nav), ("sign-in slot", slot)):
        centre = box["y"] + box["height"] / 2
        assert brand["y"] <= centre <= brand["bottom"], f"{name} is not on the brand's row"
    assert brand["right"] <= nav["x"] <= slot["x"]
    # The sign-in slot sits at the right edge of the content column.
    padding_right = float(
        await page.locator(".site-header .header-row").evaluate(
            "el => parseFloat(getComputedStyle(el).paddingRight)"
        )
    )
    assert abs(slot["right"] - (row["right"] - padding_right)) <= 1
    assert row["height"] < 80, f"header wrapped onto several rows: {row}"

    # The content column is capped and centred, not stretched across 1280 px.
    main = await rect(page, "main")
    assert main["width"] < DESKTOP["width"]
    assert abs(main["x"] - (DESKTOP["width"] - main["right"])) <= 1

    # The footer: version on the left, legal links on the right, on one row.
    version = await rect(page, ".footer-row > span")
    legal = await rect(page, ".footer-row nav")
    assert version["right"] < legal["x"]
    assert abs(version["y"] + version["height"] / 2 - (legal["y"] + legal["height"] / 2)) <= 4
    footer = page.get_by_role("contentinfo")
    assert await footer.get_by_role("link", name="Privacy").is_visible()
    assert await footer.get_by_role("link", name="Terms").is_visible()
