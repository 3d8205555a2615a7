"""Nicknames both ways (lens/users/nicknames.py): a server nickname is stored on Lens, and
a nickname changed on the site is pushed to the server by a job, over Discord's REST API
(no discord.py). The bot's side of it: tests/bot/test_members.py."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select

from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.discord.rest import USER_AGENT
from lens.jobs.models import Job
from lens.jobs.registry import JobContext, registry
from lens.settings import Settings
from lens.users.nicknames import (
    NICKNAME_KIND,
    push_nickname,
    request_nickname_push,
    store_server_nickname,
)
from lens.users.tasks import push_nickname_job
from tests.contracts.discord.checks import checked
from tests.fixtures.fake_discord import member_object, user_object
from tests.fixtures.users import make_user

SERVER_ID = 1100000000000004242
MEMBER_ID = "1100000000000000077"  # Discord's ids are snowflakes
TOKEN = "bot-token-for-tests"


@pytest.fixture
def bot_settings(make_settings: Callable[..., Settings]) -> Settings:
    """A site with a bot on a server (web and worker processes push with its token)."""
    return make_settings(DISCORD_BOT_TOKEN=TOKEN, DISCORD_SERVER_ID=str(SERVER_ID))


# -- server -> Lens ---------------------------------------------------------------------------


async def test_store_server_nickname_rules(db) -> None:
    assert await store_server_nickname(db, discord_id="1", nickname="Nobody") is None
    long = "Augusta Ada King, Countess of Lovelace"
    user = await make_user(db, nickname=long)
    # Our own push, cut to Discord's 32 characters, coming back: the site keeps the rest.
    assert await store_server_nickname(db, discord_id=user.discord_id, nickname=long[:32]) is None
    assert user.nickname == long
    stored = await store_server_nickname(db, discord_id=user.discord_id, nickname="  Ada   K ")
    assert stored is user and user.nickname == "Ada K"


# -- Lens -> server ---------------------------------------------------------------------------


class FakeDiscord:
    """Discord's member endpoint, PATCH /guilds/{guild}/members/{user}, held to Discord's
    description (tests/contracts/discord/checks.py): it answers 200 with the member object,
    or `status` with `body` (Discord's error JSON, or none for a 5xx)."""

    def __init__(self, status: int = 200, body: dict | None = None) -> None:
        self.status, self.body = status, body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status == 200:
            user_id = request.url.path.rsplit("/", 1)[1]
            nick = json.loads(request.content)["nick"]
            return httpx.Response(200, json=member_object(user_object(user_id, "ada"), nick=nick))
        if self.body is None:
            return httpx.Response(self.status)
        return httpx.Response(self.status, json=self.body)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(checked(self))


async def test_push_nickname_sets_it_on_the_server(bot_settings) -> None:
    discord = FakeDiscord()
    async with httpx.AsyncClient(transport=discord.transport()) as http:
        pushed = push_nickname(http, settings=bot_settings, discord_id=MEMBER_ID, nickname="Ada")
        assert await pushed
    (request,) = discord.requests
    assert request.method == "PATCH"
    assert str(request.url) == f"https://discord.com/api/v10/guilds/{SERVER_ID}/members/{MEMBER_ID}"
    assert request.headers["Authorization"] == f"Bot {TOKEN}"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["X-Audit-Log-Reason"] == "Nickname changed on Lens"
    assert json.loads(request.content) == {"nick": "Ada"}


async def test_push_nickname_cuts_long_ones_and_clears_none(bot_settings) -> None:
    discord = FakeDiscord()
    async with httpx.AsyncClient(transport=discord.transport()) as http:
        await push_nickname(http, settings=bot_settings, discord_id=MEMBER_ID, nickname="x" * 40)
        await push_nickname(http, settings=bot_settings, discord_id=MEMBER_ID, nickname=None)
    assert [json.loads(r.content) for r in discord.requests] == [{"nick": "x" * 32}, {"nick": None}]


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (404, {"message": "Unknown Member", "code": 10007}, False),
        (403, {"message": "Missing Permissions", "code": 50013}, IntegrationRejected),
        (
            429,
            {"message": "You are being rate limited.", "retry_after": 60.0, "global": False},
            IntegrationUnavailable,
        ),
        (502, None, IntegrationUnavailable),
    ],
)
async def test_push_nickname_failures(bot_settings, status, body, outcome) -> None:
    discord = FakeDiscord(status, body)
    async with httpx.AsyncClient(transport=discord.transport()) as http:
        push = push_nickname(http, settings=bot_settings, discord_id=MEMBER_ID, nickname="Ada")
        if outcome is False:
            assert await push is False
        else:
            with pytest.raises(outcome):
                await push


async def test_push_nickname_without_a_bot_does_nothing(make_settings) -> None:
    discord = FakeDiscord()
    async with httpx.AsyncClient(transport=discord.transport()) as http:
        settings = make_settings()
        pushed = push_nickname(http, settings=settings, discord_id=MEMBER_ID, nickname="Ada")
        assert not await pushed
    assert discord.requests == []


async def test_a_site_change_queues_one_push_with_the_newest_nickname(
    db, bot_settings, make_settings
) -> None:
    user = await make_user(db, nickname="Ada")
    await request_nickname_push(db, settings=bot_settings, user=user)
    user.nickname = "Ada L."
    await request_nickname_push(db, settings=bot_settings, user=user)
    jobs = list(await db.scalars(select(Job).where(Job.kind == NICKNAME_KIND)))
    assert [j.payload for j in jobs] == [{"user_id": user.id}]
    assert NICKNAME_KIND in registry

    discord = FakeDiscord()
    async with httpx.AsyncClient(transport=discord.transport()) as http:
        ctx = JobContext(
            session=db,
            job_id=jobs[0].id,
            kind=NICKNAME_KIND,
            attempt=1,
            settings=bot_settings,
            http=http,
        )
        await push_nickname_job(ctx, jobs[0].payload)
    assert [json.loads(r.content) for r in discord.requests] == [{"nick": "Ada L."}]

    # No bot on this site, or no Discord account: nothing to queue.
    other = await make_user(db, discord_id=None)
    await request_nickname_push(db, settings=make_settings(), user=user)
    await request_nickname_push(db, settings=bot_settings, user=other)
    count = await db.scalar(select(func.count()).select_from(Job).where(Job.kind == NICKNAME_KIND))
    assert count == 1


async def test_a_refused_push_is_not_retried(db, bot_settings) -> None:
    user = await make_user(db, nickname="Owner")
    discord = FakeDiscord(403, {"message": "Missing Permissions", "code": 50013})
    async with httpx.AsyncClient(transport=discord.transport()) as http:
        ctx = JobContext(
            session=db, job_id=1, kind=NICKNAME_KIND, attempt=1, settings=bot_settings, http=http
        )
        await push_nickname_job(ctx, {"user_id": user.id})  # logged, not raised
    assert len(discord.requests) == 1
