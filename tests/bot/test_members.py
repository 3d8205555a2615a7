"""The Members cog: a nickname changed on the server reaches Lens, and a member who joins
gets their group access. Storing and pushing nicknames: tests/users/test_nicknames.py."""

from __future__ import annotations

from unittest.mock import AsyncMock, patch

import pytest

from lens.bot.cogs import members as members_cog
from lens.bot.cogs.members import Members
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
