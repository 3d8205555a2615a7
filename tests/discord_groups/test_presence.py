"""Voice joins and leaves become presence stretches of a group's call: mapped from the
group's voice channel and the person's linked Discord account; a breakout room is the
main channel (the bot resolves it); a reconnect of the bot starts again from what it
finds."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from lens.db.base import utcnow
from lens.discord_groups.models import DiscordSpace, SpaceKind
from lens.discord_groups.plan import space_key
from lens.discord_groups.presence import voice_changed, voice_snapshot
from lens.meetings.models import PresenceSpan
from lens.users.models import User
from tests.fixtures.running import running

TUE_VOICE, THU_VOICE, LOUNGE = "700000000000000001", "700000000000000002", "700000000000000003"


async def _world(db):
    w = await running(db)
    for group, channel in ((w.tue, TUE_VOICE), (w.thu, THU_VOICE)):
        db.add(
            DiscordSpace(
                key=space_key(SpaceKind.VOICE, "group", group.id), kind=SpaceKind.VOICE,
                cohort_id=w.cohort.id, group_id=group.id, discord_id=channel,
            )
        )  # fmt: skip
    await db.flush()
    return w


async def _spans(db) -> list[tuple[int, int, bool]]:
    rows = await db.scalars(select(PresenceSpan).order_by(PresenceSpan.id))
    return [(s.group_id, s.user_id, s.left_at is None) for s in rows]


async def test_joins_and_leaves_of_a_groups_call(db) -> None:
    w = await _world(db)
    ada = await db.get(User, w.tue_people[0].user_id)
    t0 = utcnow()
    assert await voice_changed(
        db, discord_user_id=ada.discord_id, left_channel_id=None, joined_channel_id=TUE_VOICE, at=t0
    )
    # A second join event while there (a reconnect the bot saw as a join) opens nothing more.
    await voice_changed(
        db, discord_user_id=ada.discord_id, left_channel_id=None, joined_channel_id=TUE_VOICE
    )
    assert await _spans(db) == [(w.tue.id, ada.id, True)]
    # Moving to another group's call closes one and opens the other.
    await voice_changed(
        db, discord_user_id=ada.discord_id, left_channel_id=TUE_VOICE, joined_channel_id=THU_VOICE,
        at=t0 + timedelta(minutes=30),
    )  # fmt: skip
    assert await _spans(db) == [(w.tue.id, ada.id, False), (w.thu.id, ada.id, True)]
    first = await db.scalar(select(PresenceSpan).order_by(PresenceSpan.id))
    assert first.left_at - first.joined_at == timedelta(minutes=30)
    # A channel that is no group's, and a Discord account nobody linked: not recorded.
    assert not await voice_changed(
        db, discord_user_id=ada.discord_id, left_channel_id=None, joined_channel_id=LOUNGE
    )
    assert not await voice_changed(
        db, discord_user_id="123", left_channel_id=None, joined_channel_id=TUE_VOICE
    )
    # Leaving for the lounge ends the stretch in Thursday's call.
    await voice_changed(
        db, discord_user_id=ada.discord_id, left_channel_id=THU_VOICE, joined_channel_id=LOUNGE
    )
    assert await _spans(db) == [(w.tue.id, ada.id, False), (w.thu.id, ada.id, False)]


async def test_a_reconnect_starts_from_what_the_bot_finds(db) -> None:
    w = await _world(db)
    ada, bob = [await db.get(User, s.user_id) for s in w.tue_people[:2]]
    for who in (ada, bob):
        await voice_changed(
            db, discord_user_id=who.discord_id, left_channel_id=None, joined_channel_id=TUE_VOICE
        )
    # The bot was away; now only bob is in the call.
    opened = await voice_snapshot(db, present=[(bob.discord_id, TUE_VOICE), ("42", TUE_VOICE)])
    assert opened == 1
    assert await _spans(db) == [
        (w.tue.id, ada.id, False),
        (w.tue.id, bob.id, False),
        (w.tue.id, bob.id, True),
    ]
