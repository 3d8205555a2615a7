"""Nicknames both ways: a server nickname change is stored on Lens, and a nickname
changed on the site is set on the server.

No discord.py here: web and worker processes push nicknames through Discord's REST API
with the bot token (`request_nickname_push` queues it in the caller's transaction; the
job in lens/users/tasks.py sends it). The loop is closed: setting the nickname on the
server makes the bot see a member update with the same value, which changes nothing.
"""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from lens.errors import Invalid
from lens.integrations.discord.guild import UNKNOWN_MEMBER, DiscordGuild, DiscordNotFound
from lens.jobs.service import coalesce, enqueue
from lens.logging import get_logger
from lens.settings import Settings
from lens.users.models import User
from lens.users.service import check_nickname, get_user_by_discord_id

log = get_logger("lens.users.nicknames")

NICKNAME_KIND = "discord.nickname"
DISCORD_NICK_MAX = 32  # server nicknames; Lens allows longer ones


def _bot_configured(settings: Settings) -> bool:
    return bool(settings.discord_bot_token and settings.discord_server_id)


async def store_server_nickname(
    session: AsyncSession, *, discord_id: str, nickname: str | None
) -> User | None:
    """Keep the nickname someone set on the server as their Lens nickname.

    Returns the user when their nickname changed; None when there is no such account
    or nothing to change. A nickname cleared on the server clears it on Lens.
    """
    user = await get_user_by_discord_id(session, discord_id=discord_id)
    if user is None or user.deleted_at is not None:
        return None
    try:
        value = check_nickname(nickname or "")
    except Invalid:
        log.info("bot.nickname.unusable", user_id=user.id)
        return None
    if user.nickname == value or (
        # Our own push of a long site nickname, cut to Discord's length, coming back.
        user.nickname and value and user.nickname[:DISCORD_NICK_MAX] == value
    ):
        return None
    user.nickname = value
    await session.flush()
    return user


async def request_nickname_push(session: AsyncSession, *, settings: Settings, user: User) -> None:
    """Queue setting the user's current Lens nickname on the server.

    Call it in the transaction that changes the nickname. Repeated changes while the
    job waits make one push, which sends the newest nickname.
    """
    if not _bot_configured(settings) or not user.discord_id:
        return
    await enqueue(
        session,
        kind=NICKNAME_KIND,
        payload={"user_id": user.id},
        dedupe_key=coalesce(f"{NICKNAME_KIND}:{user.id}"),
    )


async def push_nickname(
    http: httpx.AsyncClient, *, settings: Settings, discord_id: str, nickname: str | None
) -> bool:
    """Set the member's server nickname (None clears it); False if they are not a member.

    IntegrationUnavailable: try again later (network, 5xx, rate limit).
    IntegrationRejected: Discord refused; e.g. the bot lacks Manage Nicknames, or the
    member is the server owner or has a role above the bot's (Discord lets no bot
    rename those).
    """
    if not _bot_configured(settings):
        return False
    try:
        await DiscordGuild.from_settings(settings, http).set_nickname(
            discord_id, nickname, reason="Nickname changed on Lens"
        )
    except DiscordNotFound as exc:
        if exc.code == UNKNOWN_MEMBER:
            return False
        raise
    log.info("bot.nickname.pushed", discord_user_id=discord_id)
    return True
