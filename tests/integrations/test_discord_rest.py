"""The Discord REST client against a fake Discord API (httpx.MockTransport, every request
and answer checked against Discord's description: tests/contracts/discord/checks.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.discord.ratelimit import RateLimits, Route, retry_after
from lens.integrations.discord.rest import USER_AGENT, DiscordRest
from tests.contracts.discord.checks import checked
from tests.fixtures.fake_discord import (
    FakeClock,
    bucket_headers,
    dm_channel_object,
    error,
    message_object,
    rate_limited,
    user_object,
)

TOKEN = "bot-token-for-tests"
ADA = "82198898841029460"
GRACE = "53908232506183680"
DM_CHANNEL = "319674150115610528"
GROUP_CHANNEL = "1108834423215403080"
BOT_USER = user_object("1108834000000000001", "Lens", bot=True)
BUCKET = "80c17d2f203122d936070c88c8d10f33"


def dm_channel(channel_id: str, user_id: str) -> dict[str, Any]:
    return dm_channel_object(channel_id, user_object(user_id, "ada"))


def message(message_id: str, channel_id: str, content: str) -> dict[str, Any]:
    return message_object(message_id, channel_id, content, BOT_USER)


def exhausted(reset_after: float) -> dict[str, str]:
    """A bucket with no requests left for `reset_after` seconds."""
    return bucket_headers(BUCKET, limit=5, remaining=0, reset_after=reset_after, now=0)


Reply = httpx.Response | Exception


@dataclass
class FakeDiscord:
    """Answers like Discord; a test can queue replies to override the next answers."""

    requests: list[httpx.Request] = field(default_factory=list)
    queued: list[Reply] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    clock: FakeClock = field(default_factory=FakeClock)

    @property
    def sleeps(self) -> list[float]:
        return self.clock.sleeps

    @property
    def now(self) -> float:
        return self.clock.now

    @now.setter
    def now(self, value: float) -> None:
        self.clock.now = value

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queued:
            reply = self.queued.pop(0)
            if isinstance(reply, Exception):
                raise reply
            return reply
        body = json.loads(request.content)
        path = request.url.path
        if request.method == "POST" and path == "/api/v10/users/@me/channels":
            user_id = body["recipient_id"]
            channel_id = DM_CHANNEL if user_id == ADA else f"9{user_id}"
            return httpx.Response(200, json=dm_channel(channel_id, user_id), headers=self.headers)
        if request.method == "POST" and path.startswith("/api/v10/channels/"):
            channel_id = path.split("/")[4]
            message_id = str(1133425467394932746 + len(self.requests))
            return httpx.Response(
                200, json=message(message_id, channel_id, body["content"]), headers=self.headers
            )
        return error(404, 0, "404: Not Found")

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


@pytest.fixture
def discord() -> FakeDiscord:
    return FakeDiscord()


@pytest.fixture
def client(discord: FakeDiscord) -> Callable[..., DiscordRest]:
    limits = RateLimits(clock=discord.clock, sleep=discord.clock.sleep)

    def build(**kwargs: Any) -> DiscordRest:
        http = httpx.AsyncClient(transport=httpx.MockTransport(checked(discord.handle)))
        return DiscordRest(http, token=TOKEN, limits=limits, **kwargs)

    return build


async def test_dm_opens_the_channel_then_posts(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    message_id = await client().send_dm(ADA, "Your group meets **Monday** at 17:00.")

    assert discord.paths() == [
        "POST /api/v10/users/@me/channels",
        f"POST /api/v10/channels/{DM_CHANNEL}/messages",
    ]
    assert discord.bodies() == [
        {"recipient_id": ADA},
        {"content": "Your group meets **Monday** at 17:00.", "allowed_mentions": {"parse": []}},
    ]
    for request in discord.requests:
        assert request.url.host == "discord.com"
        assert request.headers["Authorization"] == f"Bot {TOKEN}"
        assert request.headers["User-Agent"] == USER_AGENT
        assert request.headers["Content-Type"] == "application/json"
    assert USER_AGENT == "DiscordBot (https://github.com/lens-academy/lens, 0.1)"
    assert message_id == "1133425467394932748"


async def test_dm_channel_is_opened_once_per_user(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    rest = client()
    await rest.send_dm(ADA, "one")
    await rest.send_dm(ADA, "two")
    await rest.send_dm(GRACE, "three")

    assert discord.paths() == [
        "POST /api/v10/users/@me/channels",
        f"POST /api/v10/channels/{DM_CHANNEL}/messages",
        f"POST /api/v10/channels/{DM_CHANNEL}/messages",
        "POST /api/v10/users/@me/channels",
        f"POST /api/v10/channels/9{GRACE}/messages",
    ]


async def test_channel_post_with_embeds(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    embed = {"title": "Week 3: Alignment", "url": "https://lens.test/m/3", "color": 0x2F6FEB}
    message_id = await client(base_url="https://discord.test/api/v10/").post_message(
        GROUP_CHANNEL, "@everyone reading for this week", embeds=[embed]
    )

    [request] = discord.requests
    assert str(request.url) == f"https://discord.test/api/v10/channels/{GROUP_CHANNEL}/messages"
    assert json.loads(request.content) == {
        "content": "@everyone reading for this week",
        "embeds": [embed],
        # The @everyone above must not ping anyone.
        "allowed_mentions": {"parse": []},
    }
    assert message_id == "1133425467394932747"


async def test_nonce_asks_discord_to_deduplicate(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    rest = client()
    await rest.send_dm(ADA, "Reminder", nonce="3f1c0a9b2d4e5f60718293a4b")
    assert discord.bodies()[-1] == {
        "content": "Reminder",
        "allowed_mentions": {"parse": []},
        "nonce": "3f1c0a9b2d4e5f60718293a4b",
        "enforce_nonce": True,
    }
    with pytest.raises(ValueError, match="25"):
        await rest.post_message(GROUP_CHANNEL, "Reminder", nonce="x" * 26)


async def test_too_long_content_is_the_callers_bug(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    rest = client()
    with pytest.raises(ValueError, match="2000"):
        await rest.post_message(GROUP_CHANNEL, "x" * 2001)
    with pytest.raises(ValueError, match="content or an embed"):
        await rest.send_dm(ADA, "")
    assert discord.requests == []
    await rest.post_message(GROUP_CHANNEL, "x" * 2000)
    assert len(discord.requests) == 1


async def test_short_rate_limit_is_waited_out(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    discord.queued.append(rate_limited(0.5, headers=exhausted(0.5)))
    message_id = await client().post_message(GROUP_CHANNEL, "hello")

    assert discord.sleeps == [0.5]
    assert len(discord.requests) == 2
    assert message_id == "1133425467394932748"


def test_a_429_that_is_not_discords_json_holds_every_request_for_retry_after() -> None:
    # Cloudflare's ban page (an IP ban, not Discord's limiter) carries only the header.
    # Discord's description has no such answer, so no Discord fake gives it: the limits
    # are fed the answer directly.
    clock = FakeClock()
    limits = RateLimits(clock=clock, sleep=clock.sleep)
    banned = httpx.Response(429, text="<html>1015</html>", headers={"Retry-After": "2"})
    assert retry_after(banned) == 2.0
    limits.record(Route.of("POST", f"/channels/{GROUP_CHANNEL}/messages"), banned)
    assert limits.global_until == 2.0
    assert limits.invalid_requests() == 1


async def test_long_rate_limit_is_left_to_the_job_runner(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    discord.queued.append(rate_limited(60, headers=exhausted(60)))
    with pytest.raises(IntegrationUnavailable, match="60 s"):
        await client().post_message(GROUP_CHANNEL, "hello")
    assert discord.sleeps == []
    assert len(discord.requests) == 1


async def test_gives_up_after_three_rate_limited_tries(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    discord.queued.extend([rate_limited(0.25, headers=exhausted(0.25)) for _ in range(3)])
    with pytest.raises(IntegrationUnavailable, match="after 3 tries"):
        await client().post_message(GROUP_CHANNEL, "hello")
    assert len(discord.requests) == 3
    assert discord.sleeps == [0.25, 0.25]


async def test_exhausted_bucket_delays_the_next_request_on_that_route(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    rest = client()
    discord.headers = exhausted(1.25)
    await rest.post_message(GROUP_CHANNEL, "one")
    discord.headers = {}
    await rest.post_message("1108834423215403999", "other channel, other bucket")
    assert discord.sleeps == []
    await rest.post_message(GROUP_CHANNEL, "two")
    assert discord.sleeps == [1.25]
    await rest.post_message(GROUP_CHANNEL, "three")
    assert discord.sleeps == [1.25]


async def test_exhausted_bucket_beyond_max_wait_is_unavailable(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    rest = client(max_wait=5)
    discord.headers = exhausted(30)
    await rest.post_message(GROUP_CHANNEL, "one")
    with pytest.raises(IntegrationUnavailable, match="free in 30 s"):
        await rest.post_message(GROUP_CHANNEL, "two")
    assert len(discord.requests) == 1
    discord.now += 30
    await rest.post_message(GROUP_CHANNEL, "three")
    assert len(discord.requests) == 2


async def test_closed_dms_are_rejected(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    rest = client()
    discord.queued.append(httpx.Response(200, json=dm_channel(DM_CHANNEL, ADA)))
    discord.queued.append(error(403, 50007, "Cannot send messages to this user"))
    with pytest.raises(IntegrationRejected) as caught:
        await rest.send_dm(ADA, "Your group meets Monday")
    assert str(caught.value) == (
        f"Discord user {ADA} has direct messages from server members turned off (code 50007)"
    )


async def test_unknown_user_is_rejected(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    discord.queued.append(error(404, 10013, "Unknown User"))
    with pytest.raises(IntegrationRejected, match=r"HTTP 404.*Unknown User \(code 10013\)"):
        await client().send_dm("1", "hello")


async def test_invalid_body_is_rejected_with_discords_message(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    discord.queued.append(error(400, 50035, "Invalid Form Body"))
    with pytest.raises(IntegrationRejected, match=r"HTTP 400.*Invalid Form Body \(code 50035\)"):
        await client().post_message(GROUP_CHANNEL, "hello")


async def test_server_error_is_unavailable(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    discord.queued.append(httpx.Response(502, text="Bad Gateway"))
    with pytest.raises(IntegrationUnavailable, match="HTTP 502"):
        await client().post_message(GROUP_CHANNEL, "hello")


async def test_transport_error_is_unavailable(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    discord.queued.append(httpx.ConnectTimeout("timed out"))
    with pytest.raises(IntegrationUnavailable, match="Discord unreachable: ConnectTimeout"):
        await client().send_dm(ADA, "hello")


def test_an_answer_that_is_not_json_is_unavailable() -> None:
    # A proxy's maintenance page, not Discord (whose description has no such answer):
    # the client's reading of answers is given it directly, not through a Discord fake.
    rest = DiscordRest(httpx.AsyncClient(), token=TOKEN, limits=RateLimits())
    with pytest.raises(IntegrationUnavailable, match="unexpected"):
        rest._result(httpx.Response(200, text="<html>maintenance</html>"), dm_user=None)


async def test_bad_token_is_reported_and_not_retried_in_a_loop(
    discord: FakeDiscord, client: Callable[..., DiscordRest]
) -> None:
    rest = client()
    discord.queued.append(error(401, 0, "401: Unauthorized"))
    expected = "Discord rejected the bot token: check DISCORD_BOT_TOKEN"
    with pytest.raises(IntegrationUnavailable) as caught:
        await rest.post_message(GROUP_CHANNEL, "hello")
    assert str(caught.value) == expected
    # Each 401 counts toward Discord's invalid-request ban; this instance stops asking.
    with pytest.raises(IntegrationUnavailable, match="DISCORD_BOT_TOKEN"):
        await rest.send_dm(ADA, "hello")
    assert len(discord.requests) == 1
    assert TOKEN not in repr(rest)
