"""Admin commands: /cohort list, /schedule, /realize-groups, /sync-groups."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from unittest.mock import AsyncMock, patch

import discord
import httpx
import pytest
from sqlalchemy import select

from lens.bot.client import LensBot
from lens.bot.cogs.admin import Admin
from lens.cohorts.models import Group, GroupingRun, GroupMember, GroupStatus
from lens.db.base import utcnow
from lens.db.engine import unit_of_work
from lens.discord_groups.service import group_for_voice_channel
from lens.jobs.models import Job
from lens.meetings.service import create_meetings
from lens.scheduling.service import GROUP_KIND, run_grouping
from tests.bot.conftest import BASE_URL
from tests.bot.fakes import invoke, make_interaction, only_reply
from tests.fixtures.cohorts import evening, make_cohort, make_signup
from tests.fixtures.fake_discord import BOT_ID, FakeGuild
from tests.fixtures.users import make_user

TUESDAY = 1


@pytest.fixture
def cog(bot) -> Admin:
    return Admin(bot, bot.services)


@pytest.fixture
async def admin(db):
    return await make_user(db, is_admin=True)


def as_user(user) -> object:
    return make_interaction(user_id=int(user.discord_id))


COMMANDS = {
    "cohort list": ("cohort_list", {}, "list cohorts"),
    "schedule": ("schedule", {"cohort": 1}, "run grouping"),
    "realize-groups": ("realize_groups", {"cohort": 1}, "set up Discord for groups"),
    "sync-groups": ("sync_groups", {"cohort": 1}, "sync groups with Discord"),
}


@pytest.mark.parametrize("name", list(COMMANDS))
@pytest.mark.parametrize("who", ["member", "stranger"])
async def test_only_lens_admins_may(cog, db, name, who) -> None:
    attribute, arguments, what = COMMANDS[name]
    cohort = await make_cohort(db)
    arguments = {k: cohort.id for k in arguments}
    # A server admin in Discord without Lens admin rights is refused all the same.
    interaction = as_user(await make_user(db)) if who == "member" else make_interaction()
    with patch("lens.bot.cogs.admin.realize_groups", AsyncMock()) as realize:
        await invoke(getattr(cog, attribute), cog, interaction, **arguments)
    reply = only_reply(interaction)
    assert reply.text == f"Only Lens admins can {what}."
    assert reply.ephemeral
    realize.assert_not_awaited()
    assert await db.scalar(select(GroupingRun.id)) is None


def test_commands_take_a_cohort_number(cog) -> None:
    for command in (cog.schedule, cog.realize_groups, cog.sync_groups):
        (parameter,) = command.parameters
        assert parameter.name == "cohort"
        assert parameter.type is discord.AppCommandOptionType.integer
        assert parameter.required and parameter.min_value == 1
        assert parameter.autocomplete
    shape = cog.cohort.to_dict(cog.bot.tree)
    assert shape["name"] == "cohort"
    assert [(o["name"], o["type"]) for o in shape["options"]] == [("list", 1)]  # subcommand


async def test_cohort_list(cog, db, admin) -> None:
    spring = await make_cohort(db, name="Spring 2027")
    await make_signup(db, spring)
    await make_signup(db, spring, role="facilitator")
    interaction = as_user(admin)
    await cog.cohort_list.callback(cog, interaction)
    reply = only_reply(interaction)
    assert reply.ephemeral
    assert (
        f"**{spring.id}**: Spring 2027 (intro-to-ai-safety), open, starts 11 Jan 2027; "
        "1 participant, 1 facilitator"
    ) in reply.text
    assert reply.text.endswith(f"<{BASE_URL}/admin/cohorts>")


async def test_schedule_an_unknown_cohort(cog, admin) -> None:
    interaction = as_user(admin)
    await invoke(cog.schedule, cog, interaction, cohort=999_999)
    interaction.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    reply = only_reply(interaction)
    assert reply.text == "There is no cohort 999999."
    assert reply.ephemeral


async def test_schedule_queues_a_run_and_says_where_the_preview_will_be(cog, db, admin) -> None:
    cohort = await make_cohort(db, name="Spring 2027")
    cog.schedule_wait = 0
    interaction = as_user(admin)
    await cog.schedule.callback(cog, interaction, cohort=cohort.id)
    run = await db.scalar(select(GroupingRun).where(GroupingRun.cohort_id == cohort.id))
    assert run.status == "queued" and run.requested_by == admin.id
    job = await db.scalar(select(Job).where(Job.kind == GROUP_KIND))
    assert job.payload == {"run_id": run.id}
    reply = only_reply(interaction)
    assert reply.ephemeral
    assert reply.text == (
        f"Grouping Spring 2027 is queued (run {run.id}); a worker runs it. "
        f"The preview will be at <{BASE_URL}/admin/cohorts/{cohort.id}/grouping>"
    )


async def test_schedule_replies_with_the_preview_summary_when_the_run_is_done(
    cog, db, sessionmaker, admin
) -> None:
    cohort = await make_cohort(db, name="Spring 2027", min_group_size=3, max_group_size=5)
    for _ in range(4):
        await make_signup(db, cohort, available=evening(TUESDAY, 18, 2))
    await make_signup(db, cohort, available=evening(6, 5, 1))  # nobody else then
    await make_signup(db, cohort, role="facilitator", available=evening(TUESDAY, 18, 2))
    await make_signup(db, cohort, role="facilitator", approved=False)
    waits = []

    async def worker_runs_the_job(seconds: float) -> None:
        # What the job runner does meanwhile in another process.
        waits.append(seconds)
        async with unit_of_work(sessionmaker) as session:
            run = await session.scalar(select(GroupingRun).where(GroupingRun.status == "queued"))
            await run_grouping(session, run=run)

    cog.sleep = worker_runs_the_job
    interaction = as_user(admin)
    await cog.schedule.callback(cog, interaction, cohort=cohort.id)
    assert len(waits) == 1
    reply = only_reply(interaction)
    assert reply.ephemeral
    assert reply.text == (
        "Grouping Spring 2027 is done: 1 group, 4 of 5 participants placed. "
        "1 could not be placed. 1 facilitator awaiting approval.\n"
        f"Review and approve: <{BASE_URL}/admin/cohorts/{cohort.id}/grouping>"
    )


async def test_schedule_a_failed_run(cog, db, sessionmaker, admin) -> None:
    cohort = await make_cohort(db, name="Spring 2027")

    async def worker_fails(seconds: float) -> None:
        async with unit_of_work(sessionmaker) as session:
            run = await session.scalar(select(GroupingRun))
            run.status, run.error = "failed", "The solver ran out of memory."

    cog.sleep = worker_fails
    interaction = as_user(admin)
    await cog.schedule.callback(cog, interaction, cohort=cohort.id)
    assert only_reply(interaction).text.startswith(
        "Grouping Spring 2027 failed: The solver ran out of memory."
    )


async def test_schedule_a_running_cohort_is_refused_with_the_reason(cog, db, admin) -> None:
    cohort = await make_cohort(db, name="Spring 2027", status="running")
    interaction = as_user(admin)
    await invoke(cog.schedule, cog, interaction, cohort=cohort.id)
    assert only_reply(interaction).text == (
        "Spring 2027 is running; its groups are already approved."
    )


@pytest.mark.parametrize(
    ("command", "verb"), [("realize_groups", "Set up"), ("sync_groups", "Synced")]
)
async def test_realize_and_sync_say_what_changed(cog, db, admin, command, verb) -> None:
    cohort = await make_cohort(db, name="Spring 2027", status="running")
    interaction = as_user(admin)
    summary = "2 roles and 4 channels created, 1 member given access"
    with patch("lens.bot.cogs.admin.realize_groups", AsyncMock(return_value=summary)) as realize:
        await getattr(cog, command).callback(cog, interaction, cohort=cohort.id)
    interaction.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    realize.assert_awaited_once()
    kwargs = realize.await_args.kwargs
    assert kwargs["cohort_id"] == cohort.id
    assert kwargs["settings"] is cog.bot.settings and kwargs["http"] is cog.bot.http_client
    assert kwargs["bot_user_id"] is None  # not logged in, in a test
    reply = only_reply(interaction)
    assert reply.ephemeral
    assert reply.text == (
        f"{verb} Spring 2027: {summary}\nDetails: <{BASE_URL}/admin/cohorts/{cohort.id}>"
    )


async def test_realize_an_unknown_cohort(cog, admin) -> None:
    interaction = as_user(admin)
    with patch("lens.bot.cogs.admin.realize_groups", AsyncMock()) as realize:
        await invoke(cog.realize_groups, cog, interaction, cohort=999_999)
    assert only_reply(interaction).text == "There is no cohort 999999."
    realize.assert_not_awaited()


async def test_one_realize_per_cohort_at_a_time(cog, db, admin) -> None:
    cohort = await make_cohort(db, name="Spring 2027", status="running")
    release, started = asyncio.Event(), asyncio.Event()

    async def slow(*args, **kwargs) -> str:
        started.set()
        await release.wait()
        return "nothing to change"

    first, second = as_user(admin), as_user(admin)
    with patch("lens.bot.cogs.admin.realize_groups", AsyncMock(side_effect=slow)):
        running = asyncio.create_task(cog.realize_groups.callback(cog, first, cohort=cohort.id))
        # The first is under way (its savepoint open on the test's one connection) before
        # the second starts, however busy the machine: a fixed sleep was not always enough.
        await asyncio.wait_for(started.wait(), 10)
        await invoke(cog.sync_groups, cog, second, cohort=cohort.id)
        release.set()
        await running
    assert only_reply(second).text == (
        "Discord is already being set up for Spring 2027; wait for it."
    )
    assert only_reply(first).text.startswith("Set up Spring 2027: nothing to change")


async def test_realize_then_sync_against_a_discord_server(db, sessionmaker, make_settings) -> None:
    """End to end through lens/discord_groups and DiscordGuild, against the fake
    server of tests/fixtures/fake_discord.py: the first run makes the channels, the
    second finds nothing to change."""
    fake = FakeGuild()
    admin = await make_user(db, is_admin=True)
    start = (utcnow() + timedelta(days=10)).date()
    cohort = await make_cohort(db, name="Spring 2027", status="running", start_date=start)
    group = Group(cohort_id=cohort.id, number=1, start_slot=34, status=GroupStatus.ACTIVE)
    db.add(group)
    await db.flush()
    for role in ("facilitator", "participant", "participant"):
        user = await make_user(db)
        signup = await make_signup(db, cohort, user=user, role=role, status="grouped")
        db.add(GroupMember(group_id=group.id, signup_id=signup.id, role=role))
        fake.members.add(user.discord_id)
    await db.flush()
    await create_meetings(db, cohort=cohort, group=group)
    settings = make_settings(
        DISCORD_BOT_TOKEN=fake.token, DISCORD_SERVER_ID=fake.guild_id, FRONTEND_URL=BASE_URL
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handle)) as http:
        bot = LensBot(settings=settings, sessionmaker=sessionmaker, http=http, content=dict)
        cog = Admin(bot, bot.services)
        first, second = as_user(admin), as_user(admin)
        await cog.realize_groups.callback(cog, first, cohort=cohort.id)
        await cog.sync_groups.callback(cog, second, cohort=cohort.id)

    assert only_reply(first).text.startswith(
        f"Set up Spring 2027: Discord for cohort {cohort.id}: created 1 category, "
    )
    assert only_reply(second).text == (
        f"Synced Spring 2027: Discord for cohort {cohort.id}: nothing to change.\n"
        f"Details: <{BASE_URL}/admin/cohorts/{cohort.id}>"
    )
    voice = fake.named("Group 1", 2)
    # The bot knew its own id from Discord (not logged in to the gateway here).
    assert any(o["id"] == BOT_ID for o in voice["permission_overwrites"])
    assert await group_for_voice_channel(db, channel_id=voice["id"]) == group.id
    assert await group_for_voice_channel(db, channel_id="1") is None


async def test_cohort_choices_for_admins_only(cog, db, admin) -> None:
    spring = await make_cohort(db, name="Spring 2027")
    await make_cohort(db, name="Autumn 2027")
    choices = await cog.cohort_choices(as_user(admin), "spring")
    assert [(c.name, c.value) for c in choices] == [(f"{spring.id}: Spring 2027", spring.id)]
    assert await cog.cohort_choices(as_user(await make_user(db)), "") == []
