"""Discord OAuth against a fake Discord speaking the documented token and user shapes
(every request and answer checked: tests/contracts/discord/checks.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from lens.auth.models import OAuthState
from lens.integrations.discord.rest import USER_AGENT
from lens.users.models import User
from tests.contracts.discord.checks import check_request, checked

TESTDATA = Path(__file__).parent / "testdata"
CLIENT = {"DISCORD_CLIENT_ID": "1234567890", "DISCORD_CLIENT_SECRET": "client-secret-xyz"}


@dataclass
class FakeDiscord:
    """Discord's token endpoint and GET /users/@me. `token_status` 400 or 401 answers the
    OAuth error JSON Discord sends (`{"error": "invalid_grant", ...}`), 5xx an outage."""

    token_status: int = 200
    user_status: int = 200
    calls: list[str] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(checked(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        self.requests.append(request)
        if request.url.path == "/api/oauth2/token":
            form = parse_qs(request.content.decode())
            assert form["client_id"] == ["1234567890"]
            assert form["client_secret"] == ["client-secret-xyz"]
            assert form["redirect_uri"] == ["http://localhost:8000/auth/discord/callback"]
            if self.token_status in (400, 401) or form["code"] != ["the-code"]:
                return httpx.Response(
                    self.token_status if self.token_status in (400, 401) else 400,
                    json={
                        "error": "invalid_grant",
                        "error_description": 'Invalid "code" in request.',
                    },
                )
            if self.token_status != 200:
                return httpx.Response(
                    self.token_status, json={"message": "500: Internal Server Error", "code": 0}
                )
            return httpx.Response(
                200, json=json.loads((TESTDATA / "discord_token.json").read_text())
            )
        if request.headers["Authorization"] != "Bearer 6qrZcUqja7812RVdnEKjpzOL4CvHBFG":
            return httpx.Response(401, json={"message": "401: Unauthorized", "code": 0})
        if self.user_status != 200:
            return httpx.Response(
                self.user_status, json={"message": "401: Unauthorized", "code": 0}
            )
        return httpx.Response(200, json=json.loads((TESTDATA / "discord_user.json").read_text()))


async def start(client: httpx.AsyncClient, next_path: str = "/welcome") -> str:
    response = await client.get("/auth/discord", params={"next": next_path})
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert (
        f"{location.scheme}://{location.netloc}{location.path}"
        == "https://discord.com/oauth2/authorize"
    )
    query = parse_qs(location.query)
    assert query["scope"] == ["identify email"]
    assert query["client_id"] == ["1234567890"]
    assert query["code_challenge_method"] == ["S256"]
    return query["state"][0]


async def test_success_creates_the_user_and_signs_in(client_factory, db) -> None:
    fake = FakeDiscord()
    async with client_factory(transport=fake.transport(), **CLIENT) as client:
        state = await start(client)
        response = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/welcome"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # development over http
        home = await client.get("/")
        assert "Nelly" in home.text and "Sign out" in home.text
    user = await db.scalar(select(User).where(User.discord_id == "80351110224678912"))
    assert user is not None
    assert (user.discord_username, user.discord_global_name) == ("nelly", "Nelly")
    assert user.avatar == "8342729096ea3675442027381ff50dfe"
    assert user.email == "nelly@discord.com" and user.email_verified_at is not None


async def test_signing_in_again_updates_the_same_user(client_factory, db) -> None:
    fake = FakeDiscord()
    async with client_factory(transport=fake.transport(), **CLIENT) as client:
        for _ in range(2):
            state = await start(client)
            await client.get("/auth/discord/callback", params={"code": "the-code", "state": state})
    users = list(await db.scalars(select(User).where(User.discord_id == "80351110224678912")))
    assert len(users) == 1


async def test_user_denied(client_factory) -> None:
    async with client_factory(transport=FakeDiscord().transport(), **CLIENT) as client:
        state = await start(client)
        response = await client.get(
            "/auth/discord/callback", params={"error": "access_denied", "state": state}
        )
    assert response.status_code == 400
    assert "Sign-in cancelled" in response.text
    assert "Try again" in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("state", ["forged-state", ""])
async def test_bad_state(client_factory, state: str) -> None:
    fake = FakeDiscord()
    async with client_factory(transport=fake.transport(), **CLIENT) as client:
        await start(client)
        response = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
    assert response.status_code == 400
    assert "Try again" in response.text
    assert fake.calls == []  # Discord was never asked


async def test_replayed_state(client_factory) -> None:
    fake = FakeDiscord()
    async with client_factory(transport=fake.transport(), **CLIENT) as client:
        state = await start(client)
        first = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
        assert first.status_code == 303
        client.cookies.clear()
        again = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
    assert again.status_code == 400
    assert "already used" in again.text


async def test_expired_state(client_factory, db) -> None:
    from datetime import timedelta

    from lens.db.base import utcnow

    async with client_factory(transport=FakeDiscord().transport(), **CLIENT) as client:
        state = await start(client)
        row = await db.scalar(select(OAuthState))
        row.expires_at = utcnow() - timedelta(seconds=1)
        await db.flush()
        response = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
    assert response.status_code == 400
    assert "expired" in response.text


async def test_token_endpoint_500(client_factory) -> None:
    async with client_factory(
        transport=FakeDiscord(token_status=500).transport(), **CLIENT
    ) as client:
        state = await start(client)
        response = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
    assert response.status_code == 400
    assert "Discord is unavailable" in response.text


async def test_user_endpoint_401(client_factory) -> None:
    async with client_factory(
        transport=FakeDiscord(user_status=401).transport(), **CLIENT
    ) as client:
        state = await start(client)
        response = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
    assert response.status_code == 400
    assert "Discord refused the sign-in" in response.text


async def test_discord_down(client_factory) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    async with client_factory(
        transport=httpx.MockTransport(checked(unreachable)), **CLIENT
    ) as client:
        state = await start(client)
        response = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
    assert "Discord is unavailable" in response.text


async def test_without_discord_settings_the_button_is_hidden(app_client) -> None:
    page = await app_client.get("/auth/signin")
    assert "Sign in with Discord" not in page.text
    assert (await app_client.get("/auth/discord")).status_code == 404


async def test_a_callback_in_another_browser_is_refused(client_factory, db) -> None:
    # The attacker starts a sign-in and sends the victim the link back from Discord.
    fake = FakeDiscord()
    async with client_factory(transport=fake.transport(), **CLIENT) as attacker:
        state = await start(attacker)
        async with client_factory(transport=fake.transport(), **CLIENT) as victim:
            response = await victim.get(
                "/auth/discord/callback", params={"code": "the-code", "state": state}
            )
    assert response.status_code == 400
    assert "started in another browser" in response.text
    assert "set-cookie" not in response.headers or "session=" not in response.headers["set-cookie"]
    assert fake.calls == []


async def test_linking_cannot_be_completed_by_someone_else(client_factory, db) -> None:
    from tests.fixtures.auth import sign_in
    from tests.fixtures.users import make_user

    attacker_user = await make_user(db, discord_id=None)
    victim_user = await make_user(db, discord_id=None)
    fake = FakeDiscord()
    async with client_factory(transport=fake.transport(), **CLIENT) as browser:
        sign_in(browser, attacker_user)
        state = await start(browser, "/account")  # link=0 here; try the linking flow too
        link = await browser.get("/auth/discord", params={"link": "1"})
        link_state = parse_qs(urlsplit(link.headers["location"]).query)["state"][0]
        # The same browser now belongs to someone else (they signed in meanwhile).
        sign_in(browser, victim_user)
        response = await browser.get(
            "/auth/discord/callback", params={"code": "the-code", "state": link_state}
        )
    assert response.status_code == 400 and "Not your account" in response.text
    await db.refresh(attacker_user)
    await db.refresh(victim_user)
    assert attacker_user.discord_id is None and victim_user.discord_id is None
    del state


async def test_an_unverified_discord_email_is_not_stored(client_factory, db) -> None:
    fake = FakeDiscord()
    original = fake.handle

    def unverified(request: httpx.Request) -> httpx.Response:
        response = original(request)
        if request.url.path == "/api/v10/users/@me":
            data = json.loads(response.content)
            data["verified"] = False
            return httpx.Response(200, json=data)
        return response

    async with client_factory(
        transport=httpx.MockTransport(checked(unverified)), **CLIENT
    ) as client:
        state = await start(client)
        await client.get("/auth/discord/callback", params={"code": "the-code", "state": state})
    user = await db.scalar(select(User).where(User.discord_id == "80351110224678912"))
    assert user is not None and user.email is None


async def test_a_malformed_user_answer_is_a_clear_failure(client_factory) -> None:
    # Not Discord: an answer its description does not allow (a user without an id), to
    # pin how Lens fails on one. The token exchange before it is the checked fake's, and
    # the user request Lens sends is still checked; only this answer is not.
    fake = FakeDiscord()

    def broken(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/oauth2/token":
            return checked(fake.handle)(request)
        check_request(request)
        return httpx.Response(200, json={"username": "no id here"})

    async with client_factory(transport=httpx.MockTransport(broken), **CLIENT) as client:
        state = await start(client)
        response = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
    assert response.status_code == 400 and "Discord is unavailable" in response.text


async def test_a_refused_code_is_told_as_a_refusal(client_factory) -> None:
    # Discord's token endpoint answers OAuth errors as JSON (RFC 6749, section 5.2).
    fake = FakeDiscord(token_status=400)
    async with client_factory(transport=fake.transport(), **CLIENT) as client:
        state = await start(client)
        response = await client.get(
            "/auth/discord/callback", params={"code": "the-code", "state": state}
        )
    assert response.status_code == 400
    assert "Discord refused the sign-in" in response.text
    assert fake.calls == ["/api/oauth2/token"]


async def test_sign_in_requests_identify_lens_as_discord_asks(client_factory) -> None:
    # "Clients using the HTTP API must provide a valid User Agent ...
    # DiscordBot ($url, $versionNumber)" (Discord's API reference): the app's shared
    # client says "Lens/<version>", which Discord may block with a Cloudflare error.
    fake = FakeDiscord()
    async with client_factory(transport=fake.transport(), **CLIENT) as client:
        state = await start(client)
        await client.get("/auth/discord/callback", params={"code": "the-code", "state": state})
    assert [r.url.path for r in fake.requests] == ["/api/oauth2/token", "/api/v10/users/@me"]
    assert {r.headers["User-Agent"] for r in fake.requests} == {USER_AGENT}
    token_request = fake.requests[0]
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(token_request.content.decode())
    assert form["grant_type"] == ["authorization_code"]
    assert 43 <= len(form["code_verifier"][0]) <= 128  # PKCE (RFC 7636)


async def test_discord_sign_ins_started_from_one_network_are_limited(
    client_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each start is a row and a trip to Discord: a script starting them from one network
    stops at the limit; another network, and starts that expired, do not count."""
    from datetime import timedelta

    from lens.auth import service

    monkeypatch.setattr(service, "DISCORD_STARTS_PER_NETWORK", 3)
    async with client_factory(transport=FakeDiscord().transport(), **CLIENT) as client:
        app = client.app

        async def start_from(ip: str) -> httpx.Response:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 1))
            async with httpx.AsyncClient(transport=transport, base_url="http://lens.test") as c:
                return await c.get("/auth/discord")

        codes = [(await start_from("203.0.113.9")).status_code for _ in range(5)]
        assert codes == [302, 302, 302, 429, 429]
        refused = await start_from("203.0.113.9")
        assert "from your network" in refused.text
        assert (await start_from("2001:db8:5:5::1")).status_code == 302
        assert (await start_from("198.51.100.20")).status_code == 302
        # Once they expire (10 minutes), that network may start again.
        monkeypatch.setattr(service, "utcnow", lambda: _later(timedelta(minutes=11)))
        assert (await start_from("203.0.113.9")).status_code == 302


def _later(by):  # type: ignore[no-untyped-def]
    from lens.db.base import utcnow

    return utcnow() + by
