from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select

from lens.auth.models import SignInToken
from lens.auth.service import create_bot_code
from lens.db.base import utcnow
from lens.integrations.email.models import OutboxEmail
from lens.users.models import User
from tests.fixtures.auth import ORIGIN
from tests.integrations.fake_sendgrid import FakeSendGrid


async def use_code(client: httpx.AsyncClient, code: str, next_path: str = "/") -> httpx.Response:
    return await client.post("/auth/code", data={"code": code, "next": next_path}, headers=ORIGIN)


async def test_bot_code_signs_in_once(app_client, db) -> None:
    code = await create_bot_code(db, discord_id="323456789012345678", username="kim")
    stored = await db.scalar(select(SignInToken))
    assert stored.token_hash != code and code not in stored.token_hash  # only the hash
    confirm = await app_client.get("/auth/code", params={"code": code, "next": "/enroll"})
    assert confirm.status_code == 200 and "set-cookie" not in confirm.headers  # GET uses nothing
    first = await use_code(app_client, code, "/enroll")
    assert first.status_code == 303 and first.headers["location"] == "/enroll"
    assert "session=" in first.headers["set-cookie"]
    app_client.cookies.clear()
    again = await use_code(app_client, code)
    assert again.status_code == 400
    assert "already used" in again.text


async def test_expired_and_unknown_codes_say_which(app_client, db) -> None:
    code = await create_bot_code(db, discord_id="423456789012345678")
    row = await db.scalar(select(SignInToken))
    row.expires_at = utcnow() - timedelta(seconds=1)
    await db.flush()
    expired = await use_code(app_client, code)
    assert "expired" in expired.text and expired.status_code == 400
    unknown = await use_code(app_client, "not-a-real-code")
    assert "unknown" in unknown.text


async def request_link(client: httpx.AsyncClient, email: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/auth/email", data={"email": email, "next": "/course"}, headers={**ORIGIN, **headers}
    )


def link_in(outbox_html: str) -> str:
    match = re.search(r"/auth/email/verify\?token=([\w-]+)", outbox_html)
    assert match, outbox_html
    return match.group(1)


async def test_email_link_signs_in_and_creates_the_account(app_client, db) -> None:
    response = await request_link(app_client, "Grace@Example.org")
    assert response.status_code == 200
    assert "Check your e-mail" in response.text and "grace@example.org" in response.text
    email = await db.scalar(select(OutboxEmail))
    assert email.to == "grace@example.org"
    token = link_in(email.text)
    confirm = await app_client.get("/auth/email/verify", params={"token": token})
    assert confirm.status_code == 200 and "Sign in" in confirm.text  # GET alone signs nobody in
    assert "set-cookie" not in confirm.headers
    signed = await app_client.post("/auth/email/verify", data={"token": token}, headers=ORIGIN)
    assert signed.status_code == 303 and signed.headers["location"] == "/course"
    user = await db.scalar(select(User).where(User.email == "grace@example.org"))
    assert user is not None and user.email_verified_at is not None
    reused = await app_client.post("/auth/email/verify", data={"token": token}, headers=ORIGIN)
    assert "already used" in reused.text


async def test_email_link_expires(app_client, db) -> None:
    await request_link(app_client, "late@example.org")
    token = link_in((await db.scalar(select(OutboxEmail))).text)
    row = await db.scalar(select(SignInToken))
    row.expires_at = utcnow() - timedelta(seconds=1)
    await db.flush()
    response = await app_client.post("/auth/email/verify", data={"token": token}, headers=ORIGIN)
    assert response.status_code == 400 and "expired" in response.text


async def test_email_links_are_rate_limited_per_address(app_client, db) -> None:
    for _ in range(3):
        assert (await request_link(app_client, "busy@example.org")).status_code == 200
    limited = await request_link(app_client, "busy@example.org")
    assert limited.status_code == 429
    assert "several sign-in links" in limited.text
    assert (await request_link(app_client, "other@example.org")).status_code == 200


async def test_email_links_are_rate_limited_per_ip(app_client, db) -> None:
    for n in range(10):
        assert (await request_link(app_client, f"person{n}@example.org")).status_code == 200
    limited = await request_link(app_client, "one-more@example.org")
    assert limited.status_code == 429


async def test_bad_address_says_what_to_fix(app_client) -> None:
    response = await request_link(app_client, "not-an-address")
    assert response.status_code == 422
    assert "is not an e-mail address" in response.text
    assert 'value="not-an-address"' in response.text  # what they typed is kept


async def test_sendgrid_is_used_when_configured(client_factory, db) -> None:
    sendgrid = FakeSendGrid(api_key="SG.test-key")
    async with client_factory(
        transport=sendgrid.transport(), SENDGRID_API_KEY="SG.test-key"
    ) as client:
        response = await request_link(client, "ines@example.org")
        assert response.status_code == 200
        assert (await client.get("/dev/outbox")).status_code == 404
    (request,) = sendgrid.requests
    assert request.url == "https://api.sendgrid.com/v3/mail/send"
    sent = sendgrid.accepted
    assert sent[0]["personalizations"] == [{"to": [{"email": "ines@example.org"}]}]
    assert sent[0]["from"]["email"] == "team@lensacademy.org"
    assert "/auth/email/verify?token=" in sent[0]["content"][0]["value"]
    assert await db.scalar(select(OutboxEmail)) is None


async def test_sendgrid_failure_is_a_clear_error(client_factory) -> None:
    # SendGrid's description documents 500 as its only server error (with its example body).
    sendgrid = FakeSendGrid(
        api_key="SG.k", answers=[(500, {"errors": [{"message": "internal server error"}]})]
    )
    async with client_factory(transport=sendgrid.transport(), SENDGRID_API_KEY="SG.k") as client:
        response = await request_link(client, "ines@example.org")
    assert response.status_code == 503
    assert "could not send the e-mail" in response.text
    assert len(sendgrid.requests) == 1 and sendgrid.accepted == []


async def test_plus_addresses_share_one_limit(app_client) -> None:
    for n in range(3):
        assert (await request_link(app_client, f"vic+{n}@example.org")).status_code == 200
    assert (await request_link(app_client, "vic@example.org")).status_code == 429
    assert (await request_link(app_client, "vic+9@example.org")).status_code == 429


async def test_overlong_or_control_character_input_is_a_clear_error(app_client) -> None:
    long = await request_link(app_client, "a" * 300 + "@example.org")
    assert long.status_code == 422
    nul = await request_link(app_client, "a\x00b@example.org")
    assert nul.status_code == 422
    far = await app_client.post(
        "/auth/email", data={"email": "ok@example.org", "next": "/" + "x" * 600}, headers=ORIGIN
    )
    assert far.status_code == 200


async def test_email_links_are_limited_per_ipv6_network_not_per_address(app_client) -> None:
    """One IPv6 /64 (one home, one phone) is one sender, whichever of its addresses."""
    import httpx

    for n in range(11):
        transport = httpx.ASGITransport(app=app_client.app, client=(f"2001:db8:5:5::{n + 1:x}", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as c:
            code = (await request_link(c, f"six{n}@example.org")).status_code
        assert code == (200 if n < 10 else 429), n
