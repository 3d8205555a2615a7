"""Discord's rate limits, kept once per process (lens/integrations/discord/ratelimit.py),
against the fake server's buckets and 429s on a controlled clock: nothing really sleeps.

What Discord documents (tests/contracts/discord/FACTS.md, "Rate limits"): a global 429
holds every request of the bot; buckets (X-RateLimit-Bucket) may be shared by routes and
are counted per top-level resource; 10,000 answers of 401/403/429 in ten minutes get the
IP address banned, and 429s with `X-RateLimit-Scope: shared` do not count.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import httpx
import pytest

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.discord import ratelimit
from lens.integrations.discord.guild import BOT_PERMISSIONS, DiscordGuild, Permission
from lens.integrations.discord.oauth import DiscordOAuth
from lens.integrations.discord.ratelimit import RateLimits, Route, process_limits
from lens.integrations.discord.rest import DiscordRest
from tests.auth.test_discord import FakeDiscord as FakeOAuthDiscord
from tests.contracts.discord.checks import facts
from tests.fixtures.fake_discord import FakeClock, FakeGuild

ADA = "1300000000000000042"


def rest_for(fake: FakeGuild, **kwargs: Any) -> DiscordRest:
    """A DiscordRest (as the notification sender makes) on the fake, sharing its limits."""
    http = httpx.AsyncClient(transport=fake.transport())
    kwargs.setdefault("limits", fake.limits)
    return DiscordRest(http, token=fake.token, **kwargs)


def text_channel(fake: FakeGuild) -> str:
    return str(fake.add_channel("lounge")["id"])  # no overwrites: the bot may post


# -- one state per process -----------------------------------------------------------------


def test_every_discord_client_of_the_process_shares_one_state() -> None:
    http = httpx.AsyncClient()
    rest = DiscordRest(http, token="t")
    guild = DiscordGuild(http, token="t", guild_id="1")
    oauth = DiscordOAuth(client_id="1", client_secret="s", redirect_uri="https://x/cb", http=http)
    assert rest.limits is guild.limits is oauth.limits is process_limits()


def test_the_defaults_keep_clear_of_discords_documented_ban() -> None:
    documented = facts()["rate_limits"]["invalid_request_limit"]
    limits = RateLimits()
    assert documented["count"] == ratelimit.INVALID_BAN_AT == 10_000
    assert limits.invalid_window == documented["window_seconds"] == 600
    assert limits.soft_limit == 9_000 < limits.hard_limit == 9_900 < documented["count"]
    assert documented["counted_statuses"] == [401, 403, 429]


@pytest.mark.parametrize(
    ("method", "path", "template", "major"),
    [
        ("POST", "/channels/123/messages", "/channels/{id}/messages", "channels/123"),
        ("PATCH", "/channels/123/messages/456", "/channels/{id}/messages/{id}", "channels/123"),
        ("GET", "/guilds/1/members/2", "/guilds/{id}/members/{id}", "guilds/1"),
        ("POST", "/users/@me/channels", "/users/@me/channels", ""),
        ("POST", "/webhooks/9/s3cr3t", "/webhooks/{id}/{token}", "webhooks/9"),
    ],
)
def test_a_route_is_its_method_and_template_per_top_level_resource(
    method: str, path: str, template: str, major: str
) -> None:
    route = Route.of(method, path)
    assert (route.template, route.major) == (template, major)
    assert route.key == f"{method} {template}"


# -- the global limit ------------------------------------------------------------------------


async def test_a_global_429_holds_every_client_until_it_ends() -> None:
    fake = FakeGuild()
    channel = text_channel(fake)
    guild, rest = fake.client(max_wait=5), rest_for(fake, max_wait=5)
    fake.limit_globally(30)

    with pytest.raises(IntegrationUnavailable, match="rate limited the bot for 30 s"):
        await guild.list_channels()
    sent = fake.mark()
    # Another client of the process does not ask (and collect another 429).
    with pytest.raises(IntegrationUnavailable, match=r"global limit"):
        await rest.post_message(channel, "Your group meets on Monday")
    with pytest.raises(IntegrationUnavailable, match=r"global limit"):
        await guild.list_scheduled_events()
    assert fake.mark() == sent
    assert fake.answers.count(429) == 1

    fake.clock.now += 30  # the limit is over
    await rest.post_message(channel, "Your group meets on Monday")
    assert len(await guild.list_channels()) == 1
    assert fake.answers.count(429) == 1


async def test_a_short_global_429_is_waited_out_by_every_client() -> None:
    fake = FakeGuild()
    channel = text_channel(fake)
    guild = fake.client(max_wait=3)
    fake.limit_globally(2)

    await guild.list_channels()  # a 429, then two seconds' wait, then the answer
    assert fake.clock.sleeps == [2.0]
    fake.limit_globally(4)
    with pytest.raises(IntegrationUnavailable, match="for 4 s"):
        await guild.list_channels()  # more than this client waits
    # A client that waits longer waits the rest of the pause instead of asking again.
    await rest_for(fake, max_wait=10).post_message(channel, "hello")
    assert fake.clock.sleeps == [2.0, 4.0]
    assert fake.answers.count(429) == 2


# -- buckets ---------------------------------------------------------------------------------


async def test_routes_sharing_a_bucket_wait_for_it_across_clients() -> None:
    # On the fake, as on Discord, PATCH and DELETE /channels/{id} share one bucket, and
    # each channel has its own count of it. A route's bucket is known from its first
    # answer on (X-RateLimit-Bucket); from then on every client of the process uses it.
    fake = FakeGuild(bucket_limit=1, bucket_window=5)
    old = fake.add_voice_channel("breakout-0")
    room = fake.add_voice_channel("breakout-1")
    await fake.client().delete_channel(old["id"], reason="closed")  # DELETE's bucket

    await fake.client().modify_channel(room["id"], name="breakout-one", reason="rename")
    assert fake.clock.sleeps == []  # another channel: its own count
    # A new client (a later job) deletes it: it waits for the bucket PATCH emptied.
    await fake.client().delete_channel(room["id"], reason="closed")
    assert fake.clock.sleeps == [5.0]
    assert 429 not in fake.answers
    assert room["id"] not in fake.channels


async def test_an_exhausted_bucket_waits_reset_after_across_client_kinds() -> None:
    fake = FakeGuild(bucket_limit=2, bucket_window=1.5)
    channel = text_channel(fake)
    guild, rest = fake.client(), rest_for(fake)
    await guild.post_message(channel, "one")  # a welcome post, say
    await rest.post_message(channel, "two")  # a reminder: the bucket's last request
    assert fake.clock.sleeps == []
    await guild.post_message(channel, "three")
    assert fake.clock.sleeps == [1.5]
    assert 429 not in fake.answers


async def test_a_route_429_holds_that_route_and_not_others() -> None:
    fake = FakeGuild(bucket_limit=1, bucket_window=3)
    channel = text_channel(fake)
    # Another process used the bucket: this one learns of it from Discord's 429.
    another_process = RateLimits(clock=fake.clock, sleep=fake.clock.sleep)
    await fake.client(limits=another_process).post_message(channel, "theirs")
    guild = fake.client(max_wait=1)
    with pytest.raises(IntegrationUnavailable, match="rate limited the bot for 3 s"):
        await guild.post_message(channel, "ours")
    assert fake.answers[-1] == 429
    with pytest.raises(IntegrationUnavailable, match="is free in 3 s"):
        await guild.post_message(channel, "ours, again")  # not sent: no second 429
    assert fake.answers.count(429) == 1
    await guild.list_channels()  # another bucket goes
    assert fake.limits.invalid_requests() == 1


# -- shared 429s -----------------------------------------------------------------------------


async def test_a_shared_429_waits_and_is_not_counted_against_the_process() -> None:
    fake = FakeGuild()
    channel = text_channel(fake)
    fake.limit_resource(f"channels/{channel}", 3)

    await rest_for(fake).post_message(channel, "hello")

    assert fake.answers == [429, 200]
    assert fake.clock.sleeps == [3.0]
    assert fake.limits.invalid_requests() == 0
    assert fake.invalid_answers == []


# -- the invalid-request budget --------------------------------------------------------------


async def test_near_the_invalid_request_limit_requests_that_can_wait_are_held() -> None:
    clock = FakeClock()
    fake = FakeGuild(clock=clock, bot_permissions=BOT_PERMISSIONS & ~Permission.MANAGE_NICKNAMES)
    fake.limits = RateLimits(clock=clock, sleep=clock.sleep, soft_limit=3, hard_limit=5)
    fake.members.add(ADA)
    channel = text_channel(fake)

    with patch.object(ratelimit, "log") as log:
        for _ in range(3):  # a job per nickname, each refused: 403 Missing Permissions
            with pytest.raises(IntegrationRejected, match="50013"):
                await fake.client().set_nickname(ADA, "Ada", reason="Nickname changed on Lens")
        sent = fake.mark()
        with pytest.raises(IntegrationUnavailable, match="holding requests that can wait"):
            await fake.client().set_nickname(ADA, "Ada", reason="Nickname changed on Lens")
        with pytest.raises(IntegrationUnavailable, match="holding requests that can wait"):
            await fake.client().list_channels()
        assert fake.mark() == sent  # nothing more was sent
        # A person's message still goes.
        await rest_for(fake).post_message(channel, "Your group meets on Monday")
    errors = [
        c for c in log.error.call_args_list if c.args[0] == "discord.invalid_requests.near_limit"
    ]
    assert len(errors) == 1 and errors[0].kwargs["count"] == 3

    # Essential requests go on, and count too: two more refusals reach the hard limit,
    # where even a person's message waits.
    muted = text_channel(fake)
    send = str(Permission.SEND_MESSAGES)
    fake.channels[muted]["permission_overwrites"] = [
        {"id": fake.guild_id, "type": 0, "allow": "0", "deny": send}
    ]
    for _ in range(2):
        with pytest.raises(IntegrationRejected, match="50013"):
            await rest_for(fake).post_message(muted, "in a channel the bot may not post in")
    assert fake.limits.invalid_requests() == 5
    sent = fake.mark()
    with pytest.raises(IntegrationUnavailable, match="holding every request"):
        await rest_for(fake).post_message(channel, "another")
    assert fake.mark() == sent

    clock.now += 601  # ten minutes later the count is back to zero
    assert fake.limits.invalid_requests() == 0
    await fake.client().list_channels()


async def test_sign_in_answers_count_toward_the_ip_budget() -> None:
    # Sign-in requests use the person's token, not the bot's, but Discord's ban is per
    # IP address: their invalid answers are counted in the same process state.
    clock = FakeClock()
    limits = RateLimits(clock=clock, sleep=clock.sleep, soft_limit=1, hard_limit=2)
    fake = FakeOAuthDiscord(user_status=401)
    http = httpx.AsyncClient(transport=fake.transport())
    oauth = DiscordOAuth(
        client_id="1234567890",
        client_secret="client-secret-xyz",
        redirect_uri="http://localhost:8000/auth/discord/callback",
        http=http,
        limits=limits,
    )
    verifier = "v" * 43
    with pytest.raises(IntegrationRejected, match="HTTP 401"):
        await oauth.fetch_user(code="the-code", code_verifier=verifier)
    assert limits.invalid_requests() == 1
    # A sign-in is essential: it still goes above the soft limit...
    with pytest.raises(IntegrationRejected):
        await oauth.fetch_user(code="the-code", code_verifier=verifier)
    # ...but not at the hard one.
    calls = len(fake.calls)
    with pytest.raises(IntegrationUnavailable, match="holding every request"):
        await oauth.fetch_user(code="the-code", code_verifier=verifier)
    assert len(fake.calls) == calls
