"""The bot's way to the server-side Discord services of lens/cohorts/discord.py.

Those services talk to Discord over REST (DiscordGuild), so the web and the worker use
them without a gateway connection; the bot builds the same client from the settings
and calls the same functions.
"""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts import discord as cohort_discord
from lens.cohorts.discord_models import DiscordSpace, SpaceKind
from lens.db.base import utcnow
from lens.integrations.discord.guild import DiscordGuild
from lens.jobs.service import backoff
from lens.settings import Settings


def rest_guild(settings: Settings, http: httpx.AsyncClient) -> DiscordGuild:
    """The server as the REST client sees it (the bot's own token and server)."""
    if not settings.discord_bot_token or not settings.discord_server_id:
        raise ValueError("DISCORD_BOT_TOKEN and DISCORD_SERVER_ID are needed")
    return DiscordGuild(
        http,
        token=settings.discord_bot_token,
        guild_id=settings.discord_server_id,
        base_url=settings.discord_api_base,
    )


async def realize_groups(
    session: AsyncSession,
    *,
    settings: Settings,
    http: httpx.AsyncClient,
    cohort_id: int,
    bot_user_id: str | None,
) -> str:
    """Make the server match the cohort's active groups; what changed, in words.

    Idempotent: the first run creates the category, channels and events, later ones
    repair drift. Steps that failed for a temporary reason are retried by the
    `discord.realize` job a minute later, as after a run of that job.
    """
    guild = rest_guild(settings, http)
    report = await cohort_discord.realize_cohort(
        session,
        cohort_id=cohort_id,
        guild=guild,
        base_url=settings.public_url,
        bot_user_id=bot_user_id or await guild.bot_user_id(),
    )
    if report.temporary_failures:
        await cohort_discord.request_realization(
            session, cohort_id=cohort_id, run_at=utcnow() + backoff(1, base=60.0), follow_up=1
        )
    return report.summary()


async def grant_member_access(
    session: AsyncSession, *, settings: Settings, http: httpx.AsyncClient, discord_id: str
) -> int:
    """Open the channels of their groups to someone who just joined; how many."""
    return await cohort_discord.grant_member_access(
        session, discord_id=discord_id, guild=rest_guild(settings, http)
    )


async def group_for_voice_channel(session: AsyncSession, *, channel_id: str) -> int | None:
    """The group whose voice channel this is (as realize_cohort mapped it), if any."""
    # A read of lens/cohorts' mapping table; it belongs next to realize_cohort there.
    return await session.scalar(
        select(DiscordSpace.group_id).where(
            DiscordSpace.kind == SpaceKind.VOICE, DiscordSpace.discord_id == channel_id
        )
    )
