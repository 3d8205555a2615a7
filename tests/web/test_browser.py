"""The pages as a person sees them: real HTTP, a real headless Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Response

from tests.fixtures.browser import (
    DESKTOP,
    PHONE,
    LiveServer,
    OpenPage,
    goto,
    horizontal_overflow,
    rect,
)

pytestmark = pytest.mark.browser


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


async def test_the_api_docs_load_from_lens_itself_under_the_policy(
    live_server: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(DESKTOP)
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: elsewhere.append(r.url) if not r.url.startswith(live_server.url("/")) else None,
    )
    response = await goto(page, live_server.url("/api/docs"))
    assert response.status == 200
    # Swagger UI drew the description: the title and an operation of the API.
    await page.get_by_role("heading", name=re.compile("Lens")).first.wait_for()
    await page.get_by_text("/api/courses/{slug}").first.wait_for()
    assert elsewhere == []  # no CDN; the fixture fails the test on any CSP violation
