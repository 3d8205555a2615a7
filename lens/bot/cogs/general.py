"""Commands for everyone: sign up, availability, profile, where am I in the course, ping."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from lens.auth.visitors import user_actor
from lens.bot.common import (
    CODE_MINUTES,
    discord_time,
    lens_user,
    reply,
    sign_in_link,
)
from lens.bot.services import BotServices
from lens.cohorts.groups import list_my_groups
from lens.cohorts.service import availability_pages
from lens.courses.service import course_view, first_course
from lens.db.base import utcnow
from lens.errors import Conflict, LensError
from lens.meetings.service import meetings_for_user

Interaction = discord.Interaction[commands.Bot]

NO_ACCOUNT = "You have no Lens account yet. Use /signup to make one and enroll."
# A person could be in several cohorts at once; more links than this is noise.
MAX_LINKS = 3


class General(commands.Cog):
    def __init__(self, bot: commands.Bot, services: BotServices) -> None:
        self.bot = bot
        self.services = services

    @app_commands.command(name="signup", description="Get a private link to enroll in a course.")
    async def signup(self, interaction: Interaction) -> None:
        # Answer Discord first (3 s), then do the work: a busy database must not make
        # the command fail, or waste the code made for it.
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.services.unit_of_work() as session:
            link = await sign_in_link(
                session, interaction, settings=self.services.settings, next_path="/enroll"
            )
        await reply(
            interaction,
            f"Here is your link to enroll. It signs you in, works once, and expires in "
            f"{CODE_MINUTES} minutes:\n{link}",
        )

    @app_commands.command(
        name="availability", description="Get a private link to change your weekly availability."
    )
    async def availability(self, interaction: Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.services.unit_of_work() as session:
            user = await lens_user(session, interaction)
            if user is None:
                raise Conflict(NO_ACCOUNT)
            lines = []
            for name, path in (await availability_pages(session, user=user))[:MAX_LINKS]:
                link = await sign_in_link(
                    session, interaction, settings=self.services.settings, next_path=path
                )
                lines.append(f"{name}: {link}")
        await reply(
            interaction,
            f"Change your availability (each link works once, for {CODE_MINUTES} minutes):\n"
            + "\n".join(lines),
        )

    @app_commands.command(name="profile", description="See your Lens profile and groups.")
    async def profile(self, interaction: Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.services.unit_of_work() as session:
            user = await lens_user(session, interaction)
            if user is None:
                raise Conflict(NO_ACCOUNT)
            groups = await list_my_groups(session, user=user)
            link = await sign_in_link(
                session, interaction, settings=self.services.settings, next_path="/account"
            )
        lines = [
            f"**{user.display_name}**",
            f"Nickname: {user.nickname or 'not set'}",
            f"Time zone: {user.timezone or 'not set'}",
            f"E-mail: {user.email or 'not set'}"
            + (" (not confirmed)" if user.email and user.email_verified_at is None else ""),
            "Notifications: "
            f"e-mail {'on' if user.email_notifications else 'off'}, "
            f"Discord messages {'on' if user.dm_notifications else 'off'}",
        ]
        if groups:
            lines.append(
                "Groups: "
                + "; ".join(
                    f"{group.name} of {cohort.name}"
                    + (" (facilitator)" if role == "facilitator" else "")
                    for group, cohort, role in groups
                )
            )
        if user.is_admin:
            lines.append("You are a Lens admin.")
        lines.append(f"Edit your profile (the link works once, for {CODE_MINUTES} minutes): {link}")
        await reply(interaction, "\n".join(lines))

    @app_commands.command(
        name="course", description="Where you are in the course, and your next meeting."
    )
    async def course(self, interaction: Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        content = self.services.content
        if content is None:
            raise LensError("The course is still loading; try again in a minute.", 503)
        async with self.services.unit_of_work() as session:
            user = await lens_user(session, interaction)
            groups = await list_my_groups(session, user=user) if user else []
            course = None
            if groups:
                course = content.courses.get(groups[0][1].course_slug)
            course = course or first_course(content)
            if course is None:
                raise LensError("There is no course on this site yet.", 404)
            view = await course_view(
                session,
                content=content,
                course=course,
                actor=user_actor(user.id) if user else None,
            )
            meetings = await meetings_for_user(session, user_id=user.id) if user else []
        base = self.services.settings.public_url
        entries = [entry for unit in view.units for entry in unit.modules]
        required = [entry for entry in entries if not entry.optional]
        done = sum(1 for entry in required if entry.status == "completed")
        lines = [f"**{course.title}**: {done} of {len(required)} modules done."]
        entry = view.next_module
        if entry is not None and entry.status != "completed":
            lines.append(
                f"Next module: {entry.module.title} ({entry.status}): "
                f"<{base}/course/{course.slug}/{entry.module.slug}>"
            )
        elif entry is not None:
            lines.append("You have read every module. Well done!")
        now = utcnow()
        upcoming = [
            m for m in meetings if m.meeting.ends_at > now and m.meeting.status != "cancelled"
        ]
        if upcoming:
            m = upcoming[0]
            lines.append(
                f"Next meeting: {m.group.name}, meeting {m.meeting.number} of "
                f"{m.cohort.meetings}, {discord_time(m.meeting.starts_at)} "
                f"({discord_time(m.meeting.starts_at, 'R')})"
            )
        elif user is None:
            lines.append("You are not signed up yet: use /signup to join a cohort.")
        elif not groups:
            lines.append("You are not in a group yet, so there is no meeting to go to.")
        else:
            lines.append("Your group has no more meetings.")
        await reply(interaction, "\n".join(lines))

    @app_commands.command(name="ping", description="Check that the bot is answering.")
    async def ping(self, interaction: Interaction) -> None:
        latency = self.bot.latency
        detail = f" ({latency * 1000:.0f} ms)" if latency == latency else ""  # NaN: no gateway
        await reply(interaction, f"Pong{detail}.")
