"""DiscordGuild's requests and its reading of Discord's answers (httpx.MockTransport,
every request and answer checked against Discord's description)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.discord.guild import (
    MEMBER,
    ROLE,
    DiscordGuild,
    DiscordNotFound,
    Overwrite,
    Permission,
)
from lens.integrations.discord.ratelimit import RateLimits
from lens.integrations.discord.rest import USER_AGENT
from tests.contracts.discord.checks import checked, facts
from tests.fixtures.fake_discord import (
    FakeClock,
    member_object,
    message_object,
    rate_limited,
    user_object,
)

TOKEN = "bot-token-for-tests"
GUILD = "1100000000000000000"
CHANNEL = "1200000000000000001"
ADA = "82198898841029460"


class Recorder:
    """Answers with the given replies in turn; requests and replies checked against
    Discord's description."""

    def __init__(self, *replies: httpx.Response) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []
        self.clock = FakeClock()

    @property
    def sleeps(self) -> list[float]:
        return self.clock.sleeps

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.replies.pop(0)

    def guild(self) -> DiscordGuild:
        http = httpx.AsyncClient(transport=httpx.MockTransport(checked(self.handle)))
        limits = RateLimits(clock=self.clock, sleep=self.clock.sleep)
        return DiscordGuild(http, token=TOKEN, guild_id=GUILD, limits=limits)

    def body(self, n: int = -1) -> Any:
        return json.loads(self.requests[n].content)


def channel(**fields: Any) -> dict[str, Any]:
    return {
        "id": CHANNEL,
        "type": 0,
        "guild_id": GUILD,
        "name": "group-1",
        "position": 3,
        "parent_id": "1200000000000000000",
        "topic": None,
        "nsfw": False,
        "flags": 0,
        "permission_overwrites": [
            {"id": GUILD, "type": 0, "allow": "0", "deny": "1024"},
            {"id": ADA, "type": 1, "allow": "3072", "deny": "0"},
        ],
        **fields,
    }


async def test_create_channel_sends_overwrites_as_numbers_and_a_reason() -> None:
    discord = Recorder(httpx.Response(201, json=channel()))
    made = await discord.guild().create_channel(
        name="group-1",
        type=0,
        parent_id="1200000000000000000",
        topic="Group 1",
        overwrites=[
            Overwrite(GUILD, ROLE, deny=Permission.VIEW_CHANNEL),
            Overwrite(ADA, MEMBER, allow=Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES),
        ],
        reason="Lens: Frühling 2027 (cohort 3)",
    )

    [request] = discord.requests
    assert (request.method, request.url.path) == ("POST", f"/api/v10/guilds/{GUILD}/channels")
    assert request.headers["Authorization"] == f"Bot {TOKEN}"
    assert request.headers["User-Agent"] == USER_AGENT
    # Header values are ASCII: Discord takes the reason URL-encoded.
    header = request.headers["X-Audit-Log-Reason"]
    assert header.isascii() and unquote(header) == "Lens: Frühling 2027 (cohort 3)"
    # Discord's description types a request's allow and deny as integers (its answers
    # carry strings, which Overwrite reads back).
    assert discord.body() == {
        "name": "group-1",
        "type": 0,
        "parent_id": "1200000000000000000",
        "topic": "Group 1",
        "permission_overwrites": [
            {"id": GUILD, "type": 0, "allow": 0, "deny": 1024},
            {"id": ADA, "type": 1, "allow": 3072, "deny": 0},
        ],
    }
    assert made.id == CHANNEL and made.parent_id == "1200000000000000000"
    assert made.overwrites == (
        Overwrite(GUILD, ROLE, 0, 1024),
        Overwrite(ADA, MEMBER, 3072, 0),
    )


async def test_permission_bits_are_discords() -> None:
    documented = facts()["permissions"]["flags"]
    ours = {name: value for name, value in vars(Permission).items() if name.isupper()}
    assert "CREATE_EVENTS" in ours
    for name, value in ours.items():
        assert value == documented[name]["value"] == 1 << documented[name]["shift"], name


async def test_put_overwrite_and_deletes_answer_204() -> None:
    discord = Recorder(httpx.Response(204), httpx.Response(204), httpx.Response(204))
    guild = discord.guild()
    await guild.set_overwrite(CHANNEL, Overwrite(ADA, MEMBER, allow=1024), reason="joined")
    await guild.delete_scheduled_event("1300000000000000000", reason="cancelled")
    await guild.delete_overwrite(CHANNEL, ADA, reason="left")

    assert [f"{r.method} {r.url.path}" for r in discord.requests] == [
        f"PUT /api/v10/channels/{CHANNEL}/permissions/{ADA}",
        f"DELETE /api/v10/guilds/{GUILD}/scheduled-events/1300000000000000000",
        f"DELETE /api/v10/channels/{CHANNEL}/permissions/{ADA}",
    ]
    assert discord.body(0) == {"type": 1, "allow": 1024, "deny": 0}
    assert discord.requests[1].content == b""


async def test_a_member_not_in_the_server_is_none_other_errors_are_not() -> None:
    ada = member_object(user_object(ADA, "ada"))
    discord = Recorder(
        httpx.Response(200, json=ada),
        httpx.Response(404, json={"message": "Unknown Member", "code": 10007}),
        httpx.Response(403, json={"message": "Missing Access", "code": 50001}),
    )
    guild = discord.guild()
    assert (await guild.get_member(ADA)) == ada
    assert await guild.get_member(ADA) is None
    with pytest.raises(IntegrationRejected, match="Missing Access"):
        await guild.get_member(ADA)
    assert discord.requests[0].url.path == f"/api/v10/guilds/{GUILD}/members/{ADA}"
    assert "X-Audit-Log-Reason" not in discord.requests[0].headers


async def test_an_edited_message_that_is_gone_is_discord_not_found() -> None:
    discord = Recorder(httpx.Response(404, json={"message": "Unknown Message", "code": 10008}))
    with pytest.raises(DiscordNotFound) as caught:
        await discord.guild().edit_message(CHANNEL, "1300000000000000001", "hello <@1>")
    assert caught.value.code == 10008
    assert discord.body() == {"content": "hello <@1>", "allowed_mentions": {"parse": []}}


async def test_scheduled_events_are_voice_events_with_utc_times() -> None:
    start = datetime(2027, 1, 11, 17, 0, tzinfo=UTC)
    event = {
        "id": "1300000000000000002",
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "creator_id": "1",
        "name": "Group 1, meeting 1",
        "description": "d",
        "scheduled_start_time": "2027-01-11T17:00:00+00:00",
        "scheduled_end_time": "2027-01-11T18:00:00+00:00",
        "privacy_level": 2,
        "status": 1,
        "entity_type": 2,
        "entity_id": None,
        "entity_metadata": None,
    }
    discord = Recorder(httpx.Response(200, json=event), httpx.Response(200, json=[event]))
    guild = discord.guild()
    made = await guild.create_voice_event(
        channel_id=CHANNEL,
        name="Group 1, meeting 1",
        description="d",
        starts_at=start,
        ends_at=start.replace(hour=18),
        reason="meeting",
    )
    [listed] = await guild.list_scheduled_events()

    assert discord.body(0) == {
        "channel_id": CHANNEL,
        "entity_type": 2,
        "privacy_level": 2,
        "name": "Group 1, meeting 1",
        "description": "d",
        "scheduled_start_time": "2027-01-11T17:00:00+00:00",
        "scheduled_end_time": "2027-01-11T18:00:00+00:00",
    }
    assert made == listed
    assert made.starts_at == start and made.status == 1
    with pytest.raises(ValueError, match="naive"):
        await guild.create_voice_event(
            channel_id=CHANNEL,
            name="x",
            description="",
            starts_at=datetime(2027, 1, 11, 17),
            ends_at=start,
            reason="x",
        )


async def test_reads_wait_out_short_rate_limits_like_messages_do() -> None:
    discord = Recorder(rate_limited(0.4), httpx.Response(200, json=[channel()]))
    [only] = await discord.guild().list_channels()
    assert only.name == "group-1"
    assert discord.sleeps == [0.4]
    assert discord.requests[0].content == b""


async def test_messages_are_listed_newest_first_with_a_limit() -> None:
    message = message_object("1", CHANNEL, "hi", user_object("9", "someone"))
    discord = Recorder(httpx.Response(200, json=[message]))
    [read] = await discord.guild().list_messages(CHANNEL, limit=500)
    assert discord.requests[0].url.params["limit"] == "100"
    assert (read.author_id, read.content) == ("9", "hi")


async def test_nickname_and_the_bot_user() -> None:
    me = {**user_object("42", "Lens", bot=True), "mfa_enabled": False, "locale": "en-US"}
    discord = Recorder(
        httpx.Response(200, json=me),
        httpx.Response(200, json=member_object(user_object(ADA, "ada"), nick="Ada L.")),
    )
    guild = discord.guild()
    assert await guild.bot_user_id() == "42"
    await guild.set_nickname(ADA, "Ada L." + "x" * 40, reason="Lens: nickname")
    assert discord.requests[1].method == "PATCH"
    assert discord.body(1) == {"nick": ("Ada L." + "x" * 40)[:32]}


async def test_failures_become_our_exceptions() -> None:
    discord = Recorder(
        httpx.Response(502, text="bad gateway"),
        httpx.Response(401, json={"message": "401: Unauthorized", "code": 0}),
    )
    guild = discord.guild()
    with pytest.raises(IntegrationUnavailable, match="HTTP 502"):
        await guild.list_channels()
    with pytest.raises(IntegrationUnavailable, match="DISCORD_BOT_TOKEN"):
        await guild.list_channels()
    # A revoked token is not tried again by this client.
    with pytest.raises(IntegrationUnavailable, match="DISCORD_BOT_TOKEN"):
        await guild.list_scheduled_events()
    assert len(discord.requests) == 2
