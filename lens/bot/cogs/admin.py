"""Admin commands: cohorts, grouping, and the cohort's Discord roles and channels.

Admin means a Lens admin (User.is_admin of the caller's linked account), checked on
every command: a Discord role alone grants nothing, and Discord's own command
permissions only hide commands, they are not the check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

from lens.bot.common import lens_user, plural, reply, require_admin
from lens.bot.services import BotServices
from lens.cohorts.models import Cohort
from lens.cohorts.service import get_cohort, list_cohorts
from lens.discord_groups.service import realize_groups
from lens.errors import Conflict
from lens.scheduling.service import Preview, get_preview, latest_run, request_grouping

Interaction = discord.Interaction[commands.Bot]
CohortId = app_commands.Range[int, 1]

# How long /schedule waits for the worker to finish the run before answering "queued"
# (the solver's budget is about 10 s even for thousands of people).
SCHEDULE_WAIT_SECONDS = 60.0
POLL_SECONDS = 2.0


class Admin(commands.Cog):
    cohort = app_commands.Group(name="cohort", description="Cohorts (Lens admins only).")

    def __init__(self, bot: commands.Bot, services: BotServices) -> None:
        self.bot = bot
        self.services = services
        self.schedule_wait = SCHEDULE_WAIT_SECONDS
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        # One Discord set-up per cohort at a time in this (the only) bot process: two
        # concurrent diffs against the same server would both create what is missing.
        self._realizing: dict[int, asyncio.Lock] = {}

    @cohort.command(name="list", description="List the cohorts with their signups.")
    async def cohort_list(self, interaction: Interaction) -> None:
        async with self.services.unit_of_work() as session:
            await require_admin(session, interaction, to="list cohorts")
            rows = await list_cohorts(session)
        base = self.services.settings.public_url
        if not rows:
            await reply(
                interaction, f"There are no cohorts yet. Create one at <{base}/admin/cohorts>."
            )
            return
        lines = [
            f"**{row.cohort.id}**: {row.cohort.name} ({row.cohort.course_slug}), "
            f"{row.cohort.status}, starts {row.cohort.start_date:%d %b %Y}; "
            f"{plural(row.participants, 'participant')}, "
            f"{plural(row.facilitators, 'facilitator')}"
            for row in rows
        ]
        lines.append(f"Manage them at <{base}/admin/cohorts>")
        await reply(interaction, "\n".join(lines))

    @app_commands.command(name="schedule", description="Form groups for a cohort (Lens admins).")
    @app_commands.describe(cohort="The cohort's number (see /cohort list)")
    async def schedule(self, interaction: Interaction, cohort: CohortId) -> None:
        # Answered within Discord's 3 seconds; the result follows.
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.services.unit_of_work() as session:
            admin = await require_admin(session, interaction, to="run grouping")
            found = await get_cohort(session, cohort)
            run = await request_grouping(session, cohort=found, by=admin)
            run_id = run.id
        # The run is a job: the worker takes it once the transaction above committed.
        await reply(interaction, await self._grouping_outcome(found.id, run_id))

    async def _grouping_outcome(self, cohort_id: int, run_id: int) -> str:
        preview_url = f"<{self.services.settings.public_url}/admin/cohorts/{cohort_id}/grouping>"
        deadline = time.monotonic() + self.schedule_wait
        while True:
            async with self.services.sessionmaker() as session:
                cohort = await get_cohort(session, cohort_id)
                run = await latest_run(session, cohort=cohort)
                if run is not None and run.id == run_id and run.status == "failed":
                    return f"Grouping {cohort.name} failed: {run.error}\nDetails: {preview_url}"
                if run is not None and run.id == run_id and run.status == "done":
                    return _summary(cohort, await get_preview(session, cohort=cohort), preview_url)
            if time.monotonic() >= deadline:
                return (
                    f"Grouping {cohort.name} is queued (run {run_id}); a worker runs it. "
                    f"The preview will be at {preview_url}"
                )
            await self.sleep(POLL_SECONDS)

    @app_commands.command(
        name="realize-groups",
        description="Create the Discord roles and channels of a cohort's approved groups.",
    )
    @app_commands.describe(cohort="The cohort's number (see /cohort list)")
    async def realize_groups(self, interaction: Interaction, cohort: CohortId) -> None:
        await self._realize(interaction, cohort, to="set up Discord for groups", done="Set up")

    @app_commands.command(
        name="sync-groups",
        description="Repair a cohort's Discord roles and channels where they drifted.",
    )
    @app_commands.describe(cohort="The cohort's number (see /cohort list)")
    async def sync_groups(self, interaction: Interaction, cohort: CohortId) -> None:
        await self._realize(interaction, cohort, to="sync groups with Discord", done="Synced")

    async def _realize(
        self, interaction: Interaction, cohort_id: int, *, to: str, done: str
    ) -> None:
        """realize-groups and sync-groups are one idempotent diff: make the server match
        the approved groups, and say what changed. Run here rather than as a job so the
        admin sees the outcome in the reply (the interaction stays open 15 minutes)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.services.unit_of_work() as session:
            await require_admin(session, interaction, to=to)
            cohort = await get_cohort(session, cohort_id)
        lock = self._realizing.setdefault(cohort.id, asyncio.Lock())
        if lock.locked():
            raise Conflict(f"Discord is already being set up for {cohort.name}; wait for it.")
        async with lock, self.services.unit_of_work() as session:
            summary = await realize_groups(
                session,
                settings=self.services.settings,
                http=self.services.http_client,
                cohort_id=cohort.id,
                bot_user_id=str(self.bot.user.id) if self.bot.user else None,
            )
        base = self.services.settings.public_url
        await reply(
            interaction,
            f"{done} {cohort.name}: {summary}\nDetails: <{base}/admin/cohorts/{cohort.id}>",
        )

    @schedule.autocomplete("cohort")
    @realize_groups.autocomplete("cohort")
    @sync_groups.autocomplete("cohort")
    async def cohort_choices(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        """Cohorts matching what was typed, for admins only (others see no choices)."""
        async with self.services.sessionmaker() as session:
            user = await lens_user(session, interaction)
            if user is None or not user.is_admin:
                return []
            rows = await list_cohorts(session)
        typed = current.strip().lower()
        return [
            app_commands.Choice(
                name=f"{row.cohort.id}: {row.cohort.name}"[:100], value=row.cohort.id
            )
            for row in rows
            if typed in f"{row.cohort.id}: {row.cohort.name}".lower()
        ][:25]  # Discord shows at most 25 choices


def _summary(cohort: Cohort, preview: Preview, preview_url: str) -> str:
    total = preview.placed + len(preview.unplaced)
    parts = [
        f"Grouping {cohort.name} is done: {plural(len(preview.groups), 'group')}, "
        f"{preview.placed} of {plural(total, 'participant')} placed."
    ]
    if preview.unplaced:
        parts.append(f"{len(preview.unplaced)} could not be placed.")
    if preview.unapproved:
        parts.append(f"{plural(len(preview.unapproved), 'facilitator')} awaiting approval.")
    if preview.violations:
        parts.append(f"{plural(len(preview.violations), 'problem')} to look at.")
    return " ".join(parts) + f"\nReview and approve: {preview_url}"
