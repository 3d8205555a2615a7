"""What the rest of Lens asks of the Discord groups: a realization (queued as a job), the
link to a group's text channel, access for someone who just joined the server, and the
bot's own entry points."""

from __future__ import annotations

from datetime import datetime

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import (
    Cohort,
    CohortStatus,
    Group,
    GroupMember,
    GroupStatus,
    Signup,
    SignupStatus,
)
from lens.db.base import utcnow
from lens.discord_groups.apply import realize_cohort
from lens.discord_groups.models import DiscordSpace, SpaceKind
from lens.discord_groups.plan import TEXT_ALLOW, VOICE_ALLOW, space_key
from lens.errors import IntegrationRejected, IntegrationUnavailable
from lens.integrations.discord.guild import MEMBER, DiscordGuild, Overwrite
from lens.jobs.service import backoff, coalesce, enqueue
from lens.logging import get_logger
from lens.settings import Settings
from lens.users.models import User

log = get_logger("lens.discord_groups")

REALIZE_KIND = "discord.realize"
GRANT_KIND = "discord.grant_access"
_ERRORS = (IntegrationUnavailable, IntegrationRejected)


async def grant_member_access(
    session: AsyncSession, *, discord_id: str, guild: DiscordGuild
) -> int:
    """Someone joined the server: open their active groups' channels to them (the bot
    calls this from on_member_join). Returns how many channels they were given.

    Also asks for a realization of each of their cohorts, which names them by mention in
    the welcome message and retries any channel that could not be opened here.
    """
    user = await session.scalar(
        select(User).where(User.discord_id == discord_id, User.deleted_at.is_(None))
    )
    if user is None:
        return 0
    spaces = await session.scalars(
        select(DiscordSpace)
        .join(Group, Group.id == DiscordSpace.group_id)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .join(Signup, Signup.id == GroupMember.signup_id)
        .where(
            Signup.user_id == user.id,
            Signup.status != SignupStatus.WITHDRAWN,
            Group.status == GroupStatus.ACTIVE,
            DiscordSpace.kind.in_([SpaceKind.TEXT, SpaceKind.VOICE]),
        )
        .order_by(DiscordSpace.id)
    )
    granted = 0
    cohorts: set[int] = set()
    for space in spaces:
        cohorts.add(space.cohort_id)
        allow = TEXT_ALLOW if space.kind == SpaceKind.TEXT else VOICE_ALLOW
        try:
            await guild.set_overwrite(
                space.discord_id,
                Overwrite(discord_id, MEMBER, allow=allow),
                reason=f"Lens: {user.display_name} joined the server ({space.key})",
            )
        except _ERRORS as exc:
            log.warning(
                "discord.access.failed", user=user.id, channel=space.discord_id, error=str(exc)
            )
            continue
        granted += 1
    for cohort_id in sorted(cohorts):
        await request_realization(session, cohort_id=cohort_id)
    log.info("discord.access.granted", user=user.id, channels=granted)
    return granted


async def request_realization(
    session: AsyncSession,
    *,
    cohort_id: int,
    run_at: datetime | None = None,
    follow_up: int = 0,
) -> int | None:
    """Queue a realization of the cohort (merged with one already waiting).

    Follow-ups after temporary failures wait in a queue of their own, so a request for
    a change (a meeting moved) never waits behind a retry's back-off.
    """
    name = f"{REALIZE_KIND}:{cohort_id}" + (":retry" if follow_up else "")
    return await enqueue(
        session,
        kind=REALIZE_KIND,
        payload={"cohort_id": cohort_id, "follow_up": follow_up},
        run_at=run_at,
        dedupe_key=coalesce(name),
    )


async def group_for_voice_channel(session: AsyncSession, *, channel_id: str) -> int | None:
    """The group whose voice channel this is (as realize_cohort mapped it), if any."""
    return await session.scalar(
        select(DiscordSpace.group_id).where(
            DiscordSpace.kind == SpaceKind.VOICE, DiscordSpace.discord_id == channel_id
        )
    )


async def cohorts_with_active_groups(session: AsyncSession) -> list[int]:
    """Running cohorts with groups: a finished cohort's channels are left as they are,
    and the daily sweep does not keep asking Discord about its members."""
    rows = await session.scalars(
        select(Cohort.id)
        .join(Group, Group.cohort_id == Cohort.id)
        .where(Group.status == GroupStatus.ACTIVE, Cohort.status == CohortStatus.RUNNING)
        .distinct()
        .order_by(Cohort.id)
    )
    return list(rows)


def channel_url(guild_id: str | None, channel_id: str | None) -> str | None:
    if not guild_id or not channel_id:
        return None
    return f"https://discord.com/channels/{guild_id}/{channel_id}"


async def group_text_channel(session: AsyncSession, *, group_id: int) -> str | None:
    """The Discord id of the group's text channel, once realized."""
    return await session.scalar(
        select(DiscordSpace.discord_id).where(
            DiscordSpace.key == space_key(SpaceKind.TEXT, "group", group_id)
        )
    )


async def request_realization_for_user(session: AsyncSession, *, user_id: int) -> int:
    """Someone linked their Discord account: realize the cohorts of their groups, so
    they get access to their channels. Returns how many cohorts were queued."""
    cohort_ids = list(
        await session.scalars(
            select(Group.cohort_id)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .join(Signup, Signup.id == GroupMember.signup_id)
            .where(Signup.user_id == user_id, Group.status == GroupStatus.ACTIVE)
            .distinct()
        )
    )
    for cohort_id in cohort_ids:
        await request_realization(session, cohort_id=cohort_id)
    return len(cohort_ids)


# -- for the bot (the same work, with a client built from the settings) ----------


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
    guild = DiscordGuild.from_settings(settings, http)
    report = await realize_cohort(
        session,
        cohort_id=cohort_id,
        guild=guild,
        base_url=settings.public_url,
        bot_user_id=bot_user_id or await guild.bot_user_id(),
    )
    if report.temporary_failures:
        await request_realization(
            session, cohort_id=cohort_id, run_at=utcnow() + backoff(1, base=60.0), follow_up=1
        )
    return report.summary()
