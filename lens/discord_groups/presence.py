"""Who is in a group's call, from the Discord bot's voice events, kept as presence
stretches for attendance (lens/meetings/attendance.py). The bot resolves a breakout room
to its main channel before it calls here; a channel that is no group's voice channel,
and a Discord account linked to nobody in Lens, are not recorded."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.db.base import utcnow
from lens.discord_groups.service import group_for_voice_channel
from lens.meetings.attendance import close_all_presence, record_presence
from lens.users.models import User


async def _user_id(session: AsyncSession, discord_user_id: str) -> int | None:
    return await session.scalar(select(User.id).where(User.discord_id == discord_user_id))


async def voice_changed(
    session: AsyncSession,
    *,
    discord_user_id: str,
    left_channel_id: str | None,
    joined_channel_id: str | None,
    at: datetime | None = None,
) -> bool:
    """Someone left one voice channel and/or joined another. True when it was recorded
    (a channel of a group, and a person Lens knows)."""
    at = at or utcnow()
    left = (
        await group_for_voice_channel(session, channel_id=left_channel_id)
        if left_channel_id
        else None
    )
    joined = (
        await group_for_voice_channel(session, channel_id=joined_channel_id)
        if joined_channel_id
        else None
    )
    if left == joined or (left is None and joined is None):
        return False  # within one group's call (its rooms), or no group's at all
    user_id = await _user_id(session, discord_user_id)
    if user_id is None:
        return False
    if left is not None:
        await record_presence(session, group_id=left, user_id=user_id, joined=False, at=at)
    if joined is not None:
        await record_presence(session, group_id=joined, user_id=user_id, joined=True, at=at)
    return True


async def voice_snapshot(
    session: AsyncSession, *, present: Iterable[tuple[str, str]], at: datetime | None = None
) -> int:
    """The bot (re)connected: what it missed is unknown, so every open stretch ends now,
    and one opens for each (Discord user, main voice channel) it finds in a call."""
    at = at or utcnow()
    await close_all_presence(session, at=at)
    opened = 0
    for discord_user_id, channel_id in present:
        opened += await voice_changed(
            session,
            discord_user_id=discord_user_id,
            left_channel_id=None,
            joined_channel_id=channel_id,
            at=at,
        )
    return opened
