"""E-mail sign-in end to end in a real browser, reading the link from the dev outbox."""

from __future__ import annotations

import pytest

from tests.fixtures.browser import PHONE, LiveServer, OpenPage, goto, horizontal_overflow

pytestmark = pytest.mark.browser


async def test_email_sign_in_through_the_outbox(live_server: LiveServer, open_page: OpenPage):
    page = await open_page(PHONE)
    await goto(page, live_server.url("/"))
    await page.get_by_role("link", name="Sign in").click()
    await page.wait_for_url("**/auth/signin**")
    assert await horizontal_overflow(page) <= 0
    await page.get_by_label("E-mail address").fill("ruth@example.org")
    await page.get_by_role("button", name="E-mail me a sign-in link").click()
    await page.get_by_role("heading", name="Check your e-mail").wait_for()
    assert "ruth@example.org" in await page.content()

    await page.get_by_role("link", name="outbox").click()
    await page.wait_for_url("**/dev/outbox")
    email = page.locator("article.outbox-email").first
    assert "Your sign-in link for Lens" in await email.inner_text()
    assert "To ruth@example.org" in await email.inner_text()
    await email.get_by_role("link", name="Sign in to Lens").click()

    await page.wait_for_url("**/auth/email/verify**")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(live_server.url("/"))
    header = page.locator("#signin-slot")
    assert "ruth" in await header.inner_text()
    assert await header.get_by_role("button", name="Sign out").is_visible()

    # The link works once: using it again says so.
    await page.go_back()
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Sign-in link already used").wait_for()

    await goto(page, live_server.url("/"))
    await page.locator("#signin-slot").get_by_role("button", name="Sign out").click()
    await page.wait_for_url(live_server.url("/"))
    assert await page.locator("#signin-slot").get_by_role("link", name="Sign in").is_visible()


async def test_bad_address_is_explained_on_the_form(live_server: LiveServer, open_page: OpenPage):
    page = await open_page(PHONE)
    await goto(page, live_server.url("/auth/signin"))
    field = page.get_by_label("E-mail address")
    await field.fill("nobody@nowhere")  # passes the browser's check, not ours
    await page.get_by_role("button", name="E-mail me a sign-in link").click()
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert "is not an e-mail address" in await alert.inner_text()
    assert await field.input_value() == "nobody@nowhere"
