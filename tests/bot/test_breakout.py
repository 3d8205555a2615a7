"""Breakout rooms: who may open them, rooms of n dealt round-robin, ending, clean-up."""

from __future__ import annotations

from unittest.mock import AsyncMock, MagicMock, patch

import discord
import pytest

from lens.bot.cogs.breakout import Breakout
from lens.bot.rooms import parse_room_name, plan_rooms, room_name
from lens.cohorts.models import Group, GroupMember, GroupStatus
from lens.discord_groups.models import DiscordSpace, SpaceKind
from lens.errors import Invalid
from tests.bot.fakes import FakeServer, invoke, make_interaction, only_reply
from tests.fixtures.cohorts import make_cohort, make_signup
from tests.fixtures.users import make_user

# -- the plan (pure) --------------------------------------------------------------------------


def test_rooms_of_n_dealt_round_robin() -> None:
    assert plan_rooms(list("ABCDEFG"), 3) == [["A", "D", "G"], ["B", "E"], ["C", "F"]]
    assert plan_rooms(list("ABCD"), 2) == [["A", "C"], ["B", "D"]]
    assert plan_rooms(list("AB"), 4) == [["A", "B"]]
    assert plan_rooms([], 3) == []
    for people in range(1, 30):
        for size in range(1, 8):
            rooms = plan_rooms(list(range(people)), size)
            sizes = [len(r) for r in rooms]
            assert sum(sizes) == people and max(sizes) <= size
            assert max(sizes) - min(sizes) <= 1
    with pytest.raises(Invalid):
        plan_rooms(["A"], 0)


def test_room_names_say_their_main_channel() -> None:
    assert room_name(1234, 2) == "breakout-1234-2"
    assert parse_room_name("breakout-1234-2") == (1234, 2)
    for other in ("breakout-room", "breakout-12-x", "Breakout-1-1", "general", "breakout-1-2-3"):
        assert parse_room_name(other) is None


# -- the commands ----------------------------------------------------------------------------


@pytest.fixture
def cog(bot) -> Breakout:
    return Breakout(bot, bot.services)


@pytest.fixture
def server(bot) -> FakeServer:
    fake = FakeServer()
    bot.get_guild = lambda guild_id: fake.guild if guild_id == fake.guild.id else None
    return fake


async def meeting_in_voice(db, server: FakeServer, *, people: int, admin: bool = False):
    """A voice channel with a facilitator (a Lens admin when `admin`) and `people` more."""
    user = await make_user(db, is_admin=admin)
    main = server.voice_channel("group-3-voice")
    facilitator = server.member("fran", user_id=int(user.discord_id))
    server.place(facilitator, main)
    others = [server.member(f"p{i}") for i in range(people)]
    for member in others:
        server.place(member, main)
    return user, main, facilitator, others


async def test_an_admin_splits_everyone_else_into_rooms_of_n(cog, db, server) -> None:
    _, main, facilitator, people = await meeting_in_voice(db, server, people=7, admin=True)
    robot = server.member("music", bot=True)
    server.place(robot, main)
    other = server.voice_channel("lounge")
    interaction = make_interaction(facilitator)

    await cog.breakout.callback(cog, interaction, size=3)

    rooms = [c for c in server.channels if parse_room_name(c.name)]
    assert [r.name for r in rooms] == [f"breakout-{main.id}-{k}" for k in (1, 2, 3)]
    for call in server.guild.create_voice_channel.await_args_list:
        # Under the group's category, with its permissions: only the group sees the rooms.
        assert call.kwargs["category"] is main.category
        assert call.kwargs["overwrites"] is main.overwrites
    p = people
    assert [r.members for r in rooms] == [[p[0], p[3], p[6]], [p[1], p[4]], [p[2], p[5]]]
    assert main.members == [facilitator, robot]
    assert other.members == []
    facilitator.move_to.assert_not_awaited()
    reply = only_reply(interaction)
    assert not reply.ephemeral  # the group sees where everyone went
    assert reply.text.startswith("3 rooms of up to 3:\nRoom 1 (<#")
    assert "p0, p3, p6" in reply.text and reply.text.endswith(
        "/breakout-end to bring everyone back."
    )


async def test_the_facilitator_of_the_group_meeting_here_may(cog, db, server) -> None:
    user, main, facilitator, _ = await meeting_in_voice(db, server, people=4)
    group = await group_led_by(db, user)
    # The channel is the group's voice channel, as realize_cohort mapped it.
    db.add(
        DiscordSpace(
            key=f"voice:group:{group.id}",
            kind=SpaceKind.VOICE,
            cohort_id=group.cohort_id,
            group_id=group.id,
            discord_id=str(main.id),
        )
    )
    await db.flush()
    await cog.breakout.callback(cog, make_interaction(facilitator), size=2)
    assert len([c for c in server.channels if parse_room_name(c.name)]) == 2


async def group_led_by(db, facilitator_user, member_user=None) -> Group:
    cohort = await make_cohort(db, status="running")
    group = Group(cohort_id=cohort.id, number=3, start_slot=40, status=GroupStatus.ACTIVE)
    db.add(group)
    await db.flush()
    lead = await make_signup(db, cohort, user=facilitator_user, role="facilitator")
    db.add(GroupMember(group_id=group.id, signup_id=lead.id, role="facilitator"))
    if member_user is not None:
        member = await make_signup(db, cohort, user=member_user, status="grouped")
        db.add(GroupMember(group_id=group.id, signup_id=member.id, role="participant"))
    await db.flush()
    return group


@pytest.mark.parametrize("who", ["group member", "not a group channel", "no account"])
async def test_others_may_not(cog, db, server, who) -> None:
    user, main, caller, _ = await meeting_in_voice(db, server, people=3)
    lead = await make_user(db)
    group = await group_led_by(db, lead, member_user=user)
    mapped = None if who == "not a group channel" else group.id
    if who == "no account":
        caller.id = 1  # a Discord user without a Lens account
    with patch("lens.bot.cogs.breakout.group_for_voice_channel", AsyncMock(return_value=mapped)):
        interaction = make_interaction(caller)
        await invoke(cog.breakout, cog, interaction, size=2)
    reply = only_reply(interaction)
    assert reply.ephemeral
    assert "Only this group's facilitator can open and close breakout rooms." in reply.text
    server.guild.create_voice_channel.assert_not_awaited()
    assert all(m.move_to.await_count == 0 for m in main.members)


async def test_breakout_needs_a_voice_channel_and_people(cog, db, server) -> None:
    user = await make_user(db, is_admin=True)
    caller = server.member("fran", user_id=int(user.discord_id))
    interaction = make_interaction(caller)
    await invoke(cog.breakout, cog, interaction, size=2)
    assert only_reply(interaction).text == "Join your group's voice channel first."

    server.place(caller, server.voice_channel("empty"))
    interaction = make_interaction(caller)
    await invoke(cog.breakout, cog, interaction, size=2)
    assert only_reply(interaction).text == "Nobody else is in this voice channel."


async def test_breakout_twice_is_refused(cog, db, server) -> None:
    _, _, facilitator, _ = await meeting_in_voice(db, server, people=4, admin=True)
    await cog.breakout.callback(cog, make_interaction(facilitator), size=2)
    interaction = make_interaction(facilitator)
    await invoke(cog.breakout, cog, interaction, size=2)
    assert "already open" in only_reply(interaction).text
    assert server.guild.create_voice_channel.await_count == 2


async def test_a_breakout_while_another_is_opening_is_refused(cog, db, server) -> None:
    _, main, facilitator, _ = await meeting_in_voice(db, server, people=4, admin=True)
    async with cog._lock(main.id):  # the first /breakout, still creating its rooms
        interaction = make_interaction(facilitator)
        await invoke(cog.breakout, cog, interaction, size=2)
    assert "being opened or closed" in only_reply(interaction).text
    server.guild.create_voice_channel.assert_not_awaited()


async def test_the_size_is_between_2_and_25(cog) -> None:
    (parameter,) = cog.breakout.parameters
    assert parameter.name == "size" and parameter.required
    assert (parameter.min_value, parameter.max_value) == (2, 25)
    assert cog.breakout.guild_only and cog.breakout_end.guild_only


@pytest.mark.parametrize("where", ["main channel", "a room"])
async def test_breakout_end_brings_everyone_back_and_deletes_the_rooms(
    cog, db, server, where
) -> None:
    _, main, facilitator, people = await meeting_in_voice(db, server, people=5, admin=True)
    await cog.breakout.callback(cog, make_interaction(facilitator), size=2)
    rooms = [c for c in server.channels if parse_room_name(c.name)]
    if where == "a room":
        server.place(facilitator, rooms[1])
    interaction = make_interaction(facilitator)

    await cog.breakout_end.callback(cog, interaction)

    assert sorted(m.name for m in main.members) == sorted(["fran", *(p.name for p in people)])
    assert server.names() == ["group-3-voice"]
    assert all(r.delete.await_count == 1 for r in rooms)
    assert only_reply(interaction).text == (
        f"Closed 3 breakout rooms; everyone is back in {main.mention}."
    )


async def test_breakout_end_with_no_rooms(cog, db, server) -> None:
    _, _, facilitator, _ = await meeting_in_voice(db, server, people=2, admin=True)
    interaction = make_interaction(facilitator)
    await invoke(cog.breakout_end, cog, interaction)
    assert only_reply(interaction).text == "There are no breakout rooms open for this channel."


async def test_breakout_end_skips_someone_who_left_the_call(cog, db, server) -> None:
    _, main, facilitator, people = await meeting_in_voice(db, server, people=2, admin=True)
    await cog.breakout.callback(cog, make_interaction(facilitator), size=1)
    gone = discord.HTTPException(
        MagicMock(status=400, reason="Bad"), "Target user is not connected"
    )
    people[0].move_to.side_effect = gone
    await cog.breakout_end.callback(cog, make_interaction(facilitator))
    assert server.names() == ["group-3-voice"]
    assert people[1] in main.members


# -- clean-up after a restart ----------------------------------------------------------------


async def test_on_ready_deletes_empty_leftover_rooms_only(cog, server) -> None:
    main = server.voice_channel("group-1-voice")
    empty = server.voice_channel(room_name(main.id, 1))
    busy = server.voice_channel(room_name(main.id, 2))
    server.place(server.member("ada"), busy)
    orphan = server.voice_channel(room_name(999, 1))  # its main channel is gone
    lookalike = server.voice_channel("breakout-planning")
    lounge = server.voice_channel("lounge")

    await cog.on_ready()
    await cog.on_ready()  # a reconnect fires it again: nothing more happens

    assert server.channels == [main, busy, lookalike, lounge]
    empty.delete.assert_awaited_once()
    orphan.delete.assert_awaited_once()


async def test_rooms_go_once_the_whole_group_has_left_the_call(cog, db, server) -> None:
    _, _main, facilitator, people = await meeting_in_voice(db, server, people=2, admin=True)
    await cog.breakout.callback(cog, make_interaction(facilitator), size=1)
    rooms = [c for c in server.channels if parse_room_name(c.name)]

    async def leave(member) -> None:
        before = member.voice
        server.place(member, None)
        after = type(before)()  # a VoiceState with no channel
        after.channel = None
        await cog.on_voice_state_update(member, before, after)

    await leave(facilitator)
    await leave(people[0])
    assert len(server.channels) == 3  # someone is still in room 2
    await leave(people[1])
    assert server.names() == ["group-3-voice"]
    assert all(r.delete.await_count == 1 for r in rooms)
