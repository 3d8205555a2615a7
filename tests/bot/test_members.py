"""Members joining, nicknames both ways (server -> Lens by event, Lens -> server by REST)."""

from __future__ import annotations

import json
from unittest.mock import AsyncMock, patch

import httpx
import pytest
from sqlalchemy import func, select

from lens.bot.cogs import members as members_cog
from lens.bot.cogs.members import Members
from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.discord.rest import USER_AGENT
from lens.jobs.models import Job
from lens.jobs.registry import JobContext, registry
from lens.users.nicknames import (
    NICKNAME_KIND,
    push_nickname,
    request_nickname_push,
    store_server_nickname,
)
from lens.users.tasks import push_nickname_job
from tests.bot.conftest import TOKEN
from tests.bot.fakes import SERVER_ID, make_member
from tests.fixtures.users import make_user


@pytest.fixture
def cog(bot) -> Members:
    return Members(bot, bot.services)


def renamed(user_id: int, before: str | None, after: str | None, *, server: int = SERVER_ID):
    old = make_member(user_id, nick=before)
    new = make_member(user_id, nick=after)
    new.guild.id = server
    return old, new


# -- server -> Lens ---------------------------------------------------------------------------


async def test_a_nickname_changed_on_the_server_is_stored(cog, db) -> None:
    user = await make_user(db, nickname="Ada")
    await cog.on_member_update(*renamed(int(user.discord_id), "Ada", "Countess Ada"))
    await db.refresh(user)
    assert user.nickname == "Countess Ada"


async def test_a_nickname_cleared_on_the_server_is_cleared(cog, db) -> None:
    user = await make_user(db, nickname="Ada")
    await cog.on_member_update(*renamed(int(user.discord_id), "Ada", None))
    await db.refresh(user)
    assert user.nickname is None


@pytest.mark.parametrize("case", ["other server", "same nickname", "a bot"])
async def test_other_member_updates_change_nothing(cog, db, case) -> None:
    user = await make_user(db, nickname="Ada")
    before, after = renamed(
        int(user.discord_id),
        "Ada",
        "Ada" if case == "same nickname" else "Grace",
        server=1 if case == "other server" else SERVER_ID,
    )
    after.bot = case == "a bot"
    with patch.object(members_cog, "store_server_nickname", AsyncMock()) as store:
        await cog.on_member_update(before, after)
    store.assert_not_awaited()


async def test_store_server_nickname_rules(db) -> None:
    assert await store_server_nickname(db, discord_id="1", nickname="Nobody") is None
    long = "Augusta Ada King, Countess of Lovelace"
    user = await make_user(db, nickname=long)
    # Our own push, cut to Discord's 32 characters, coming back: the site keeps the rest.
    assert await store_server_nickname(db, discord_id=user.discord_id, nickname=long[:32]) is None
    assert user.nickname == long
    stored = await store_server_nickname(db, discord_id=user.discord_id, nickname="  Ada   K ")
    assert stored is user and user.nickname == "Ada K"


# -- joining ---------------------------------------------------------------------------------


async def test_a_member_who_joins_gets_their_group_access_through_a_job(cog, db) -> None:
    from sqlalchemy import select

    from lens.jobs.models import Job

    member = make_member()
    await cog.on_member_join(member)
    (job,) = await db.scalars(select(Job).where(Job.kind == "discord.grant_access"))
    assert job.payload == {"discord_id": str(member.id)}
    await cog.on_member_join(member)  # a replayed event: still one job waiting
    assert len(list(await db.scalars(select(Job).where(Job.kind == "discord.grant_access")))) == 1


async def test_bots_and_other_servers_are_ignored(cog) -> None:
    robot = make_member(bot=True)
    elsewhere = make_member()
    elsewhere.guild.id = 1
    with patch.object(members_cog, "request_member_access", AsyncMock()) as request:
        await cog.on_member_join(robot)
        await cog.on_member_join(elsewhere)
    request.assert_not_awaited()


# -- Lens -> server ---------------------------------------------------------------------------


class FakeDiscord:
    """Discord's member endpoint: PATCH /guilds/{guild}/members/{user}."""

    def __init__(self, status: int = 204, body: dict | None = None) -> None:
        self.status, self.body = status, body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.body is None:
            return httpx.Response(self.status)
        return httpx.Response(self.status, json=self.body)


async def test_push_nickname_sets_it_on_the_server(bot_settings) -> None:
    discord = FakeDiscord()
    async with httpx.AsyncClient(transport=httpx.MockTransport(discord)) as http:
        assert await push_nickname(http, settings=bot_settings, discord_id="77", nickname="Ada")
    (request,) = discord.requests
    assert request.method == "PATCH"
    assert str(request.url) == f"https://discord.com/api/v10/guilds/{SERVER_ID}/members/77"
    assert request.headers["Authorization"] == f"Bot {TOKEN}"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["X-Audit-Log-Reason"] == "Nickname changed on Lens"
    assert json.loads(request.content) == {"nick": "Ada"}


async def test_push_nickname_cuts_long_ones_and_clears_none(bot_settings) -> None:
    discord = FakeDiscord(status=200, body={"user": {"id": "77"}, "nick": None})
    async with httpx.AsyncClient(transport=httpx.MockTransport(discord)) as http:
        await push_nickname(http, settings=bot_settings, discord_id="77", nickname="x" * 40)
        await push_nickname(http, settings=bot_settings, discord_id="77", nickname=None)
    assert [json.loads(r.content) for r in discord.requests] == [{"nick": "x" * 32}, {"nick": None}]


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (404, {"message": "Unknown Member", "code": 10007}, False),
        (403, {"message": "Missing Permissions", "code": 50013}, IntegrationRejected),
        (
            429,
            {"message": "You are being rate limited.", "retry_after": 60.0},
            IntegrationUnavailable,
        ),
        (502, None, IntegrationUnavailable),
    ],
)
async def test_push_nickname_failures(bot_settings, status, body, outcome) -> None:
    discord = FakeDiscord(status, body)
    async with httpx.AsyncClient(transport=httpx.MockTransport(discord)) as http:
        push = push_nickname(http, settings=bot_settings, discord_id="77", nickname="Ada")
        if outcome is False:
            assert await push is False
        else:
            with pytest.raises(outcome):
                await push


async def test_push_nickname_without_a_bot_does_nothing(make_settings) -> None:
    discord = FakeDiscord()
    async with httpx.AsyncClient(transport=httpx.MockTransport(discord)) as http:
        settings = make_settings()
        assert not await push_nickname(http, settings=settings, discord_id="7", nickname="Ada")
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
    async with httpx.AsyncClient(transport=httpx.MockTransport(discord)) as http:
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
    async with httpx.AsyncClient(transport=httpx.MockTransport(discord)) as http:
        ctx = JobContext(
            session=db, job_id=1, kind=NICKNAME_KIND, attempt=1, settings=bot_settings, http=http
        )
        await push_nickname_job(ctx, {"user_id": user.id})  # logged, not raised
    assert len(discord.requests) == 1
