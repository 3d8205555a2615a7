"""The bot hands voice joins and leaves to the presence records: a breakout room counts
as its main channel, mute and moves within a call are not changes, bots are ignored."""

from __future__ import annotations

from unittest.mock import MagicMock

import discord
import pytest
from sqlalchemy import select

from lens.bot.cogs.presence import Presence, main_channel_id
from lens.bot.rooms import room_name
from lens.cohorts.models import Group, GroupMember
from lens.discord_groups.models import DiscordSpace, SpaceKind
from lens.meetings.models import PresenceSpan
from tests.bot.fakes import FakeServer
from tests.fixtures.cohorts import make_cohort, make_signup
from tests.fixtures.users import make_user


@pytest.fixture
def cog(bot) -> Presence:
    return Presence(bot, bot.services)


@pytest.fixture
def server(bot) -> FakeServer:
    fake = FakeServer()
    bot.get_guild = lambda guild_id: fake.guild if guild_id == fake.guild.id else None
    return fake


def _state(channel) -> MagicMock:
    state = MagicMock(spec=discord.VoiceState)
    state.channel = channel
    return state


async def _group_call(db, server: FakeServer):
    cohort = await make_cohort(db, status="running")
    group = Group(cohort_id=cohort.id, number=1, start_slot=36, status="active")
    db.add(group)
    await db.flush()
    user = await make_user(db)
    signup = await make_signup(db, cohort, user=user, status="grouped")
    db.add(GroupMember(group_id=group.id, signup_id=signup.id, role="participant"))
    main = server.voice_channel("group-1-voice")
    db.add(
        DiscordSpace(
            key=f"voice:group:{group.id}", kind=SpaceKind.VOICE, cohort_id=cohort.id,
            group_id=group.id, discord_id=str(main.id),
        )
    )  # fmt: skip
    await db.commit()
    member = server.member("ada", user_id=int(user.discord_id))
    return group, user, main, member


async def _open(bot) -> list[bool]:
    async with bot.services.sessionmaker() as session:
        spans = await session.scalars(select(PresenceSpan).order_by(PresenceSpan.id))
        return [s.left_at is None for s in spans]


def test_a_breakout_room_is_its_main_channel(server) -> None:
    main = server.voice_channel("group-1-voice")
    room = server.voice_channel(room_name(main.id, 2))
    assert main_channel_id(room) == main_channel_id(main) == str(main.id)
    assert main_channel_id(None) is None


async def test_joins_rooms_and_leaves(cog, bot, db, server) -> None:
    _, _, main, member = await _group_call(db, server)
    room = server.voice_channel(room_name(main.id, 1))
    await cog.on_voice_state_update(member, _state(None), _state(main))
    assert await _open(bot) == [True]
    await cog.on_voice_state_update(member, _state(main), _state(room))  # into a breakout room
    await cog.on_voice_state_update(member, _state(room), _state(room))  # muted
    assert await _open(bot) == [True]
    await cog.on_voice_state_update(member, _state(room), _state(None))
    assert await _open(bot) == [False]
    robot = server.member("helper", bot=True)
    await cog.on_voice_state_update(robot, _state(None), _state(main))
    assert await _open(bot) == [False]


async def test_on_ready_records_who_is_in_the_calls(cog, bot, db, server) -> None:
    _, _, main, member = await _group_call(db, server)
    server.place(member, main)
    await cog.on_ready()
    assert await _open(bot) == [True]
