"""Realizing cohorts in Discord off the requests that change them.

`discord.realize` (payload {"cohort_id"}) runs `realize_cohort` with a client built
from the settings and stores its report for the admin (`get_last_report`). Steps that
failed for a temporary reason (Discord down, rate limited for long) are retried by a
follow-up realization with a growing delay; a refused step (missing permission) waits
for the admin, who sees it in the report. A daily sweep realizes every cohort with
active groups, which heals hand edits in Discord and moves the welcome messages on to
the next meeting.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from lens.db.base import utcnow
from lens.discord_groups.apply import realize_cohort
from lens.discord_groups.report import record_not_configured
from lens.discord_groups.service import (
    GRANT_KIND,
    REALIZE_KIND,
    cohorts_with_active_groups,
    grant_member_access,
    request_realization,
)
from lens.errors import NotFound
from lens.integrations.discord.guild import DiscordGuild
from lens.jobs.periodic import every
from lens.jobs.registry import JobContext, job
from lens.jobs.service import backoff, coalesce, enqueue
from lens.logging import get_logger

log = get_logger("lens.discord_groups")

REALIZE_ALL_KIND = "discord.realize_all"
# Follow-ups after temporary failures: 1, 2, 4, 8, 16 minutes, then the daily sweep.
FOLLOW_UPS = 5


def guild_for(ctx: JobContext) -> DiscordGuild | None:
    """The server a job works on: one put in `ctx.extras` (tests), else a client from
    the settings, else None (no bot token: Discord is off)."""
    injected: DiscordGuild | None = ctx.extras.get("discord_guild")
    if injected is not None:
        return injected
    settings = ctx.settings
    if not settings.discord_bot_token or not settings.discord_server_id or ctx.http is None:
        return None
    return DiscordGuild.from_settings(settings, ctx.http)


@job(REALIZE_KIND, max_attempts=3)
async def realize(ctx: JobContext, payload: dict[str, Any]) -> None:
    cohort_id = int(payload["cohort_id"])
    follow_up = int(payload.get("follow_up") or 0)
    guild = guild_for(ctx)
    if guild is None:
        if ctx.settings.discord_bot_token and not ctx.settings.discord_server_id:
            await record_not_configured(
                ctx.session,
                cohort_id=cohort_id,
                reason="DISCORD_SERVER_ID is not set: the bot does not know which server",
            )
        log.info("discord.realize.off", cohort=cohort_id)
        return
    # Nothing is changed yet if this fails, so the runner's retry is the right answer.
    bot_user_id = await guild.bot_user_id()
    try:
        report = await realize_cohort(
            ctx.session,
            cohort_id=cohort_id,
            guild=guild,
            base_url=ctx.settings.public_url,
            bot_user_id=bot_user_id,
        )
    except NotFound:
        log.info("discord.realize.no_cohort", cohort=cohort_id)  # deleted since the request
        return
    if report.failed:
        log.warning("discord.realize.incomplete", cohort=cohort_id, summary=report.summary())
    if report.temporary_failures and follow_up < FOLLOW_UPS:
        await request_realization(
            ctx.session,
            cohort_id=cohort_id,
            run_at=utcnow() + backoff(follow_up + 1, base=60.0),
            follow_up=follow_up + 1,
        )


@job(REALIZE_ALL_KIND, max_attempts=3)
async def realize_all(ctx: JobContext, payload: dict[str, Any]) -> None:
    if guild_for(ctx) is None:
        return
    cohort_ids = await cohorts_with_active_groups(ctx.session)
    for cohort_id in cohort_ids:
        await request_realization(ctx.session, cohort_id=cohort_id)
    log.info("discord.realize_all.queued", cohorts=len(cohort_ids))


every(REALIZE_ALL_KIND, timedelta(days=1))


async def request_member_access(session: AsyncSession, *, discord_id: str) -> None:
    """Someone joined the server (the bot saw it): open their group channels, in a job,
    so a wave of joins never holds web connections while Discord answers."""
    await enqueue(
        session,
        kind=GRANT_KIND,
        payload={"discord_id": discord_id},
        dedupe_key=coalesce(f"{GRANT_KIND}:{discord_id}"),
    )


@job(GRANT_KIND, max_attempts=5)
async def grant_access(ctx: JobContext, payload: dict[str, Any]) -> None:
    guild = guild_for(ctx)
    if guild is None:
        return
    granted = await grant_member_access(
        ctx.session, discord_id=str(payload["discord_id"]), guild=guild
    )
    log.info("discord.member.granted", discord_user_id=payload["discord_id"], channels=granted)
