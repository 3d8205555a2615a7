"""A cohort's groups realized in Discord, against an in-memory server (fake_discord):
what a first run makes, that a second changes nothing, that a run after a failure
mid-way finishes the job, and that people who join the server later get access."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import Cohort, Group, GroupMember, Signup
from lens.discord_groups.apply import realize_cohort
from lens.discord_groups.models import DiscordSpace
from lens.discord_groups.plan import ARCHIVED_ALLOW, BOT_ALLOW, TEXT_ALLOW, VOICE_ALLOW
from lens.discord_groups.report import RealizeReport, get_last_report
from lens.discord_groups.service import REALIZE_KIND, grant_member_access, group_for_voice_channel
from lens.discord_groups.tasks import realize, realize_all
from lens.integrations.discord.guild import BOT_PERMISSIONS, Permission
from lens.jobs.models import Job
from lens.jobs.registry import JobContext
from lens.meetings.models import Meeting
from lens.users.models import User
from tests.fixtures.cohorts import make_cohort, make_signup
from tests.fixtures.fake_discord import BOT_ID, GUILD_ID, FakeGuild
from tests.fixtures.users import make_user

BASE = "https://lens.example.org"
MONDAY_17_UTC = 34
GROUPS = [["Grace", "Ada", "Alan"], ["Barbara", "Edsger", "Frances"]]  # facilitator first
# The first run: a category, per group two channels, a welcome and three events.
FIRST_RUN = sorted(
    ["POST /guilds/{id}/channels"] * 5
    + ["POST /channels/{id}/messages"] * 2
    + ["POST /guilds/{id}/scheduled-events"] * 6
)


@dataclass
class World:
    cohort: Cohort
    groups: list[Group]
    users: dict[str, User]
    meetings: dict[int, list[Meeting]]  # by group id


def next_monday(days_ahead: int) -> date:
    day = datetime.now(UTC).date() + timedelta(days=days_ahead)
    return day + timedelta(days=(7 - day.weekday()) % 7)


async def build(
    db: AsyncSession,
    fake: FakeGuild,
    *,
    outside: tuple[str, ...] = (),
    unlinked: tuple[str, ...] = (),
) -> World:
    """Two active groups of three with three weekly meetings ahead; everyone with a
    Discord account is in the server except `outside`."""
    start = next_monday(10)
    cohort = await make_cohort(
        db, name="Spring 2027", start_date=start, meetings=3, status="running"
    )
    groups, users, meetings = [], {}, {}
    for number, names in enumerate(GROUPS, start=1):
        group = Group(cohort_id=cohort.id, number=number, start_slot=MONDAY_17_UTC, status="active")
        db.add(group)
        await db.flush()
        for i, name in enumerate(names):
            fields: dict[str, Any] = {"nickname": name}
            if name in unlinked:
                fields["discord_id"] = None
            user = await make_user(db, **fields)
            role = "facilitator" if i == 0 else "participant"
            signup = await make_signup(db, cohort, user=user, role=role, status="grouped")
            db.add(GroupMember(group_id=group.id, signup_id=signup.id, role=role))
            if user.discord_id and name not in outside:
                fake.members.add(user.discord_id)
            users[name] = user
        first = datetime.combine(start, time(17), UTC) + timedelta(hours=number - 1)
        meetings[group.id] = [
            Meeting(
                group_id=group.id,
                number=k + 1,
                starts_at=first + timedelta(weeks=k),
                ends_at=first + timedelta(weeks=k, hours=1),
            )
            for k in range(3)
        ]
        db.add_all(meetings[group.id])
        groups.append(group)
    await db.flush()
    return World(cohort, groups, users, meetings)


async def run(db: AsyncSession, fake: FakeGuild, world: World) -> RealizeReport:
    return await realize_cohort(
        db, cohort_id=world.cohort.id, guild=fake.client(), base_url=BASE, bot_user_id=BOT_ID
    )


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def assert_realized(
    fake: FakeGuild, world: World, *, outside: frozenset[str] | set[str] = frozenset()
) -> None:
    """The server holds exactly what the cohort's groups call for, once each."""
    base = {GUILD_ID: (0, 0, Permission.VIEW_CHANNEL), BOT_ID: (1, BOT_ALLOW, 0)}
    [category] = [c for c in fake.channels.values() if c["type"] == 4]
    assert category["name"] == "Spring 2027"
    assert fake.overwrites(category) == base
    assert len(fake.channels) == 1 + 2 * len(world.groups)
    expected_events = []
    for group in world.groups:
        names = GROUPS[group.number - 1]
        in_server = [
            world.users[n].discord_id
            for n in names
            if world.users[n].discord_id and n not in outside
        ]
        text = fake.named(f"group-{group.number}", 0)
        voice = fake.named(f"Group {group.number}", 2)
        for channel, allow in ((text, TEXT_ALLOW), (voice, VOICE_ALLOW)):
            assert channel["parent_id"] == category["id"]
            assert fake.overwrites(channel) == base | {i: (1, allow, 0) for i in in_server}
        assert text["topic"] == f"Group {group.number} of Spring 2027: {BASE}/groups/{group.id}"
        [welcome] = fake.messages_in(text)
        assert fake.messages_in(voice) == []
        first = world.meetings[group.id][0]
        content = welcome["content"]
        assert content.startswith(f"**Welcome to Group {group.number} of Spring 2027!**")
        assert f"<t:{ts(first.starts_at)}:F> (<t:{ts(first.starts_at)}:R>)" in content
        assert f"<{BASE}/groups/{group.id}>" in content
        assert f"<{BASE}/account/calendar>" in content
        assert f"join <#{voice['id']}>" in content
        for name in names:
            user = world.users[name]
            shown = f"<@{user.discord_id}>" if user.discord_id and name not in outside else name
            assert shown in content
        for meeting in world.meetings[group.id]:
            if meeting.status == "scheduled" and meeting.starts_at > datetime.now(UTC):
                expected_events.append(
                    (
                        f"Spring 2027: Group {group.number}, meeting {meeting.number}",
                        voice["id"],
                        meeting.starts_at,
                        meeting.ends_at,
                    )
                )
    events = [
        (
            e["name"],
            e["channel_id"],
            datetime.fromisoformat(e["scheduled_start_time"]),
            datetime.fromisoformat(e["scheduled_end_time"]),
        )
        for e in fake.events.values()
    ]
    assert sorted(events) == sorted(expected_events)
    assert all(e["entity_type"] == 2 and e["privacy_level"] == 2 for e in fake.events.values())


async def spaces(db: AsyncSession) -> dict[str, str]:
    rows = await db.scalars(select(DiscordSpace))
    return {row.key: row.discord_id for row in rows}


# -- a first run, a second run --------------------------------------------------------------


async def test_first_run_creates_exactly_the_expected_then_a_second_changes_nothing(
    db: AsyncSession,
) -> None:
    fake = FakeGuild()
    world = await build(db, fake)

    report = await run(db, fake, world)

    assert sorted(fake.changes_since(0)) == FIRST_RUN
    assert_realized(fake, world)
    assert report.created == {"category": 1, "text": 2, "voice": 2, "welcome": 2, "event": 6}
    assert not report.updated and not report.deleted and not report.skipped and not report.failed
    mapped = await spaces(db)
    assert len(mapped) == 1 + 2 * 3 + 6
    category = next(c for c in fake.channels.values() if c["type"] == 4)
    assert mapped[f"category:cohort:{world.cohort.id}"] == category["id"]
    # Every change says why in the server's audit log.
    assert all(reason.startswith("Lens: ") for reason in fake.reasons)

    mark = fake.mark()
    again = await run(db, fake, world)

    assert fake.changes_since(mark) == []
    assert again.changes == 0 and not again.failed
    assert again.summary() == f"Discord for cohort {world.cohort.id}: nothing to change."
    assert await spaces(db) == mapped


async def test_the_report_is_kept_for_the_admin(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake, outside=("Alan",), unlinked=("Frances",))

    report = await run(db, fake, world)

    assert report.skipped == [
        "Frances (Group 2): no Discord account linked",
        "Alan (Group 1): not in the Discord server yet; gets access on joining",
    ]
    stored = await get_last_report(db, cohort_id=world.cohort.id)
    assert stored is not None
    assert stored.summary == report.summary()
    assert stored.summary.startswith(
        f"Discord for cohort {world.cohort.id}: created 1 category, 2 text channels, "
        "2 voice channels, 2 welcome messages, 6 events.\nSkipped (2):\n- Frances"
    )
    assert stored.report["created"]["event"] == 6
    assert stored.failed_steps == 0


# -- failures mid-way -----------------------------------------------------------------------


@pytest.mark.parametrize("applied", [False, True], ids=["lost", "applied-then-500"])
@pytest.mark.parametrize("k", range(1, 14))
async def test_a_run_after_a_failure_mid_way_completes_without_duplicates(
    db: AsyncSession, k: int, applied: bool
) -> None:
    """Whichever of the 13 changes of a first run fails (before or after Discord applied
    it), the next run makes the rest and nothing twice; the one after changes nothing."""
    fake = FakeGuild(fail_on={k}, fail_after_applying=applied)
    world = await build(db, fake)

    broken = await run(db, fake, world)

    assert broken.failed and broken.temporary_failures >= 1
    assert "HTTP 500" in broken.failed[0]

    fake.fail_on.clear()
    healed = await run(db, fake, world)

    assert_realized(fake, world)
    assert not healed.failed
    mark = fake.mark()
    assert (await run(db, fake, world)).changes == 0
    assert fake.changes_since(mark) == []


async def test_a_refused_step_is_reported_and_the_independent_steps_go_on(
    db: AsyncSession,
) -> None:
    fake = FakeGuild(fail_on={2}, fail_status=403)  # the first group's text channel
    world = await build(db, fake)

    report = await run(db, fake, world)

    assert report.temporary_failures == 0
    assert report.failed == [
        "creating text channel group-1: Discord refused POST "
        f"/guilds/{GUILD_ID}/channels (HTTP 403): Missing Permissions (code 50013)"
    ]
    # Group 1's voice channel and events, and all of group 2, were made regardless.
    assert report.created == {"category": 1, "text": 1, "voice": 2, "welcome": 1, "event": 6}
    assert "Failed (1):\n- creating text channel group-1" in report.summary()


async def test_a_bot_without_create_events_gets_its_channels_and_a_report_of_the_events(
    db: AsyncSession,
) -> None:
    # Since 2026-02-23 Discord refuses to create an event for a bot with Manage Events
    # but not Create Events (tests/contracts/discord/FACTS.md).
    fake = FakeGuild(bot_permissions=BOT_PERMISSIONS & ~Permission.CREATE_EVENTS)
    world = await build(db, fake)

    report = await run(db, fake, world)

    assert fake.events == {}
    assert report.created == {"category": 1, "text": 2, "voice": 2, "welcome": 2}
    assert report.temporary_failures == 0  # a setting to fix, not a retry
    assert len(report.failed) == 6
    assert all(
        f.startswith("creating the event 'Spring 2027: Group ")
        and f.endswith("(HTTP 403): Missing Permissions (code 50013)")
        for f in report.failed
    )

    fake.bot_permissions = BOT_PERMISSIONS  # the admin gives the role Create Events
    again = await run(db, fake, world)
    assert again.created == {"event": 6} and not again.failed
    assert_realized(fake, world)


async def test_a_run_whose_mapping_was_rolled_back_adopts_what_it_made(db: AsyncSession) -> None:
    """The worker died after the Discord calls, before its transaction committed: the
    next run finds the channels, events and welcome messages and takes them over."""
    fake = FakeGuild()
    world = await build(db, fake)
    savepoint = await db.begin_nested()
    await run(db, fake, world)
    await savepoint.rollback()
    assert await spaces(db) == {}

    mark = fake.mark()
    report = await run(db, fake, world)

    assert fake.changes_since(mark) == []
    assert report.changes == 0
    assert_realized(fake, world)
    assert len(await spaces(db)) == 13


async def test_nothing_is_changed_when_the_server_cannot_be_read(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    world.groups[1].status = "disbanded"  # would be deleted, if the server could be read
    await db.flush()
    fake.down = True

    mark = fake.mark()
    report = await run(db, fake, world)

    assert report.failed == ["reading the server's channels and events: Discord answered HTTP 503"]
    assert report.temporary_failures == 1 and report.changes == 0
    assert fake.changes_since(mark) == []
    assert len(await spaces(db)) == 13


async def test_members_whose_presence_cannot_be_checked_keep_what_they_have(
    db: AsyncSession,
) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    ada = world.users["Ada"].discord_id
    assert ada is not None
    fake.unreadable_members.add(ada)  # Ada is asked about second, after Grace

    mark = fake.mark()
    report = await run(db, fake, world)

    assert report.failed == [
        "checking who is in the server (5 unchecked): Discord answered HTTP 503"
    ]
    assert report.temporary_failures == 1
    assert fake.changes_since(mark) == []  # neither access taken away nor the welcome edited
    assert_realized(fake, world)


# -- people joining later, leaving ----------------------------------------------------------


async def test_a_member_who_joins_later_gets_access(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake, outside=("Ada",))
    ada = world.users["Ada"]
    assert ada.discord_id is not None

    report = await run(db, fake, world)

    assert report.skipped == [
        "Ada (Group 1): not in the Discord server yet; gets access on joining"
    ]
    assert_realized(fake, world, outside={"Ada"})
    assert ada.discord_id not in fake.overwrites(fake.named("group-1"))

    fake.members.add(ada.discord_id)  # she joins; the bot's on_member_join calls:
    mark = fake.mark()
    granted = await grant_member_access(db, discord_id=ada.discord_id, guild=fake.client())

    assert granted == 2
    assert fake.changes_since(mark) == ["PUT /channels/{id}/permissions/{id}"] * 2
    assert fake.overwrites(fake.named("group-1"))[ada.discord_id] == (1, TEXT_ALLOW, 0)
    assert fake.overwrites(fake.named("Group 1"))[ada.discord_id] == (1, VOICE_ALLOW, 0)
    # A realization is queued, which names her by mention in the welcome message.
    job = await db.scalar(select(Job).where(Job.kind == REALIZE_KIND))
    assert job is not None and job.payload["cohort_id"] == world.cohort.id

    mark = fake.mark()
    after = await run(db, fake, world)

    assert fake.changes_since(mark) == ["PATCH /channels/{id}/messages/{id}"]
    assert after.updated == {"welcome": 1} and not after.skipped
    assert_realized(fake, world)


async def test_someone_not_in_any_group_gets_nothing(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    stranger = await make_user(db, nickname="Stranger")
    assert stranger.discord_id is not None
    fake.members.add(stranger.discord_id)

    mark = fake.mark()
    assert await grant_member_access(db, discord_id=stranger.discord_id, guild=fake.client()) == 0
    assert await grant_member_access(db, discord_id="999", guild=fake.client()) == 0
    assert fake.changes_since(mark) == []


async def test_a_member_who_leaves_the_group_loses_access(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    alan = world.users["Alan"]
    signup_id = await db.scalar(select(Signup.id).where(Signup.user_id == alan.id))
    await db.execute(delete(GroupMember).where(GroupMember.signup_id == signup_id))

    mark = fake.mark()
    report = await run(db, fake, world)

    assert sorted(fake.changes_since(mark)) == [
        "PATCH /channels/{id}",
        "PATCH /channels/{id}",
        "PATCH /channels/{id}/messages/{id}",
    ]
    assert report.updated == {"text": 1, "voice": 1, "welcome": 1}
    for name in ("group-1", "Group 1"):
        assert alan.discord_id not in fake.overwrites(fake.named(name))
    assert f"<@{alan.discord_id}>" not in fake.messages_in(fake.named("group-1"))[0]["content"]


# -- meetings moving, cancelled; groups disbanded ------------------------------------------


async def test_a_moved_meeting_updates_its_event(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    meeting = world.meetings[world.groups[0].id][1]  # the second: the welcome stays as it is
    meeting.starts_at += timedelta(days=1, hours=2)
    meeting.ends_at += timedelta(days=1, hours=2)
    await db.flush()

    mark = fake.mark()
    report = await run(db, fake, world)

    assert fake.changes_since(mark) == ["PATCH /guilds/{id}/scheduled-events/{id}"]
    assert report.updated == {"event": 1}
    assert_realized(fake, world)


async def test_moving_the_next_meeting_updates_the_welcome_too(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    meeting = world.meetings[world.groups[0].id][0]
    meeting.starts_at += timedelta(hours=1)
    meeting.ends_at += timedelta(hours=1)
    await db.flush()

    mark = fake.mark()
    await run(db, fake, world)

    assert sorted(fake.changes_since(mark)) == [
        "PATCH /channels/{id}/messages/{id}",
        "PATCH /guilds/{id}/scheduled-events/{id}",
    ]
    assert_realized(fake, world)


async def test_a_cancelled_meeting_deletes_its_event(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    meeting = world.meetings[world.groups[1].id][2]
    event_id = (await spaces(db))[f"event:meeting:{meeting.id}"]
    meeting.status = "cancelled"
    await db.flush()

    mark = fake.mark()
    report = await run(db, fake, world)

    assert fake.changes_since(mark) == ["DELETE /guilds/{id}/scheduled-events/{id}"]
    assert report.deleted == {"event": 1}
    assert event_id not in fake.events and len(fake.events) == 5
    assert f"event:meeting:{meeting.id}" not in await spaces(db)
    assert_realized(fake, world)
    mark = fake.mark()
    await run(db, fake, world)
    assert fake.changes_since(mark) == []


async def test_a_disbanded_group_loses_its_channels_and_events(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    world.groups[1].status = "disbanded"
    await db.flush()

    mark = fake.mark()
    report = await run(db, fake, world)

    assert sorted(fake.changes_since(mark)) == sorted(
        ["DELETE /guilds/{id}/scheduled-events/{id}"] * 3 + ["DELETE /channels/{id}"] * 2
    )
    assert report.deleted == {"event": 3, "text": 1, "voice": 1}
    world.groups.pop()
    assert_realized(fake, world)
    assert len(await spaces(db)) == 1 + 3 + 3  # the category, group 1's three, its events


async def test_a_finished_cohort_keeps_its_channels_read_only(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    alan = world.users["Alan"]
    world.cohort.status = "finished"
    await db.flush()

    report = await run(db, fake, world)

    assert report.deleted.get("event", 0) == 6  # the meetings ahead: none are held now
    assert report.deleted.get("text", 0) == report.deleted.get("voice", 0) == 0
    for name in ("group-1", "Group 1"):
        _, allow, _ = fake.overwrites(fake.named(name))[alan.discord_id]
        assert allow == int(ARCHIVED_ALLOW)  # can read back; cannot post, join or speak
    again = await run(db, fake, world)
    assert again.summary().endswith("nothing to change.")


async def test_events_are_only_for_meetings_ahead(db: AsyncSession) -> None:
    """A meeting under way or over gets no event made or moved, and its event is not
    deleted: Discord starts and ends it. The welcome moves on once it is over."""
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    meeting = world.meetings[world.groups[0].id][0]

    async def run_at(now: datetime) -> RealizeReport:
        return await realize_cohort(
            db,
            cohort_id=world.cohort.id,
            guild=fake.client(),
            base_url=BASE,
            bot_user_id=BOT_ID,
            now=now,
        )

    mark = fake.mark()
    under_way = await run_at(meeting.starts_at + timedelta(minutes=10))
    assert fake.changes_since(mark) == [] and under_way.changes == 0

    over = await run_at(meeting.ends_at + timedelta(minutes=1))
    assert fake.changes_since(mark) == ["PATCH /channels/{id}/messages/{id}"]
    assert over.updated == {"welcome": 1}
    second = world.meetings[world.groups[0].id][1]
    welcome = fake.messages_in(fake.named("group-1"))[0]["content"]
    assert f"Next: meeting 2, <t:{ts(second.starts_at)}:F>" in welcome
    assert len(fake.events) == 6
    assert f"event:meeting:{meeting.id}" in await spaces(db)


# -- hand edits in Discord ------------------------------------------------------------------


async def test_a_channel_deleted_by_hand_is_made_again(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    text = fake.named("group-2")
    fake.delete_by_hand(text["id"])

    mark = fake.mark()
    report = await run(db, fake, world)

    assert sorted(fake.changes_since(mark)) == [
        "POST /channels/{id}/messages",
        "POST /guilds/{id}/channels",
    ]
    assert report.created == {"text": 1, "welcome": 1}
    assert_realized(fake, world)
    assert (await spaces(db))[f"text:group:{world.groups[1].id}"] == fake.named("group-2")["id"]
    voice_id = fake.named("Group 2")["id"]
    assert await group_for_voice_channel(db, channel_id=voice_id) == world.groups[1].id
    assert await group_for_voice_channel(db, channel_id=fake.named("group-2")["id"]) is None


async def test_a_voice_channel_deleted_by_hand_gets_its_events_back(db: AsyncSession) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    fake.delete_by_hand(fake.named("Group 1")["id"])  # Discord drops its events too
    assert len(fake.events) == 3

    mark = fake.mark()
    report = await run(db, fake, world)

    assert report.created == {"voice": 1, "event": 3}
    assert report.updated == {"welcome": 1}  # it names the new voice channel
    assert len(fake.changes_since(mark)) == 5
    assert_realized(fake, world)


async def test_hand_edits_to_what_lens_owns_are_put_back_and_other_roles_kept(
    db: AsyncSession,
) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    text = fake.named("group-1")
    ada = world.users["Ada"].discord_id
    mentors = {"id": "1300000000000000077", "type": 0, "allow": str(TEXT_ALLOW), "deny": "0"}
    text["permission_overwrites"] = [o for o in text["permission_overwrites"] if o["id"] != ada] + [
        mentors
    ]
    text["name"] = "chit-chat"
    fake.events[next(iter(fake.events))]["scheduled_start_time"] = "2031-01-01T10:00:00+00:00"

    mark = fake.mark()
    report = await run(db, fake, world)

    assert sorted(fake.changes_since(mark)) == [
        "PATCH /channels/{id}",
        "PATCH /guilds/{id}/scheduled-events/{id}",
    ]
    assert report.updated == {"text": 1, "event": 1}
    text = fake.named("group-1")
    assert fake.overwrites(text)[ada] == (1, TEXT_ALLOW, 0)
    assert fake.overwrites(text)[mentors["id"]] == (0, TEXT_ALLOW, 0)  # an admin's, kept
    mark = fake.mark()
    await run(db, fake, world)
    assert fake.changes_since(mark) == []


async def test_a_welcome_message_deleted_by_hand_is_posted_again_when_it_changes(
    db: AsyncSession,
) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    text = fake.named("group-1")
    fake.messages[text["id"]].clear()
    world.users["Ada"].nickname = "Ada L."
    world.users["Ada"].discord_id = None  # she unlinked Discord: now named, not mentioned
    await db.flush()

    mark = fake.mark()
    report = await run(db, fake, world)

    assert fake.changes_since(mark) == [
        "PATCH /channels/{id}",  # her overwrites go
        "PATCH /channels/{id}",
        "PATCH /channels/{id}/messages/{id}",  # 404 Unknown Message
        "POST /channels/{id}/messages",
    ]
    assert report.created == {"welcome": 1}
    assert "Ada L." in fake.messages_in(text)[0]["content"]


# -- the job --------------------------------------------------------------------------------


def job_context(db: AsyncSession, fake: FakeGuild, make_settings: Any, **extra: Any) -> JobContext:
    import httpx

    settings = make_settings(
        DISCORD_BOT_TOKEN=fake.token, DISCORD_SERVER_ID=fake.guild_id, FRONTEND_URL=BASE, **extra
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    return JobContext(
        session=db, job_id=1, kind=REALIZE_KIND, attempt=1, settings=settings, http=http
    )


async def test_the_job_realizes_with_the_settings_and_retries_temporary_failures(
    db: AsyncSession, make_settings: Any
) -> None:
    fake = FakeGuild(fail_on={4})  # the first welcome message
    world = await build(db, fake)

    await realize(job_context(db, fake, make_settings), {"cohort_id": world.cohort.id})

    assert fake.requests[0].url.path == "/api/v10/users/@me"
    stored = await get_last_report(db, cohort_id=world.cohort.id)
    assert stored is not None and stored.failed_steps == 1
    assert "HTTP 500" in stored.summary
    follow_up = await db.scalar(
        select(Job).where(Job.kind == REALIZE_KIND, Job.payload["follow_up"].as_integer() == 1)
    )
    assert follow_up is not None
    assert follow_up.run_at > datetime.now(UTC) + timedelta(seconds=50)

    fake.fail_on.clear()
    await realize(job_context(db, fake, make_settings), dict(follow_up.payload))

    assert_realized(fake, world)
    stored = await get_last_report(db, cohort_id=world.cohort.id)
    assert stored is not None and stored.failed_steps == 0
    assert (
        await db.scalar(select(func.count()).select_from(Job).where(Job.kind == REALIZE_KIND)) == 1
    )


async def test_the_daily_sweep_queues_every_cohort_with_groups(
    db: AsyncSession, make_settings: Any
) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    await make_cohort(db, name="No groups yet")
    finished = await make_cohort(db, name="Last year", status="finished")
    db.add(Group(cohort_id=finished.id, number=1, start_slot=0, status="active"))
    await db.flush()

    await realize_all(job_context(db, fake, make_settings), {})

    jobs = list(await db.scalars(select(Job).where(Job.kind == REALIZE_KIND)))
    assert [j.payload for j in jobs] == [{"cohort_id": world.cohort.id, "follow_up": 0}]
    await realize_all(job_context(db, fake, make_settings), {})  # merged while queued
    assert len(list(await db.scalars(select(Job).where(Job.kind == REALIZE_KIND)))) == 1


async def test_the_job_does_nothing_without_a_bot(db: AsyncSession, make_settings: Any) -> None:
    fake = FakeGuild()
    world = await build(db, fake)
    ctx = job_context(db, fake, make_settings)
    ctx.settings = make_settings()

    await realize(ctx, {"cohort_id": world.cohort.id})

    assert fake.requests == []
    assert await get_last_report(db, cohort_id=world.cohort.id) is None


async def test_the_admin_sees_the_last_run_and_can_queue_one(app_client, db) -> None:
    from lens.db.base import utcnow
    from lens.discord_groups.report import RealizeReport, save_report
    from lens.jobs.models import Job
    from tests.fixtures.auth import ORIGIN, sign_in
    from tests.fixtures.cohorts import make_cohort
    from tests.fixtures.users import make_user

    cohort = await make_cohort(db, status="running")
    report = RealizeReport(cohort_id=cohort.id)
    report.skipped.append("Ada (group 1): not in the Discord server yet")
    await save_report(db, report, now=utcnow())
    sign_in(app_client, await make_user(db, is_admin=True))
    page = await app_client.get(f"/admin/cohorts/{cohort.id}")
    assert "Groups in Discord" in page.text and "not in the Discord server yet" in page.text
    assert "The Discord bot is not configured" in page.text
    queued = await app_client.post(f"/admin/cohorts/{cohort.id}/discord", headers=ORIGIN)
    assert queued.status_code == 303
    kinds = [j.kind for j in await db.scalars(select(Job))]
    assert "discord.realize" in kinds


async def test_a_large_group_is_checked_with_one_member_list(db: AsyncSession) -> None:
    fake = FakeGuild()
    cohort = await make_cohort(db, name="Big", start_date=next_monday(10), meetings=1,
                               status="running", max_group_size=80)  # fmt: skip
    group = Group(cohort_id=cohort.id, number=1, start_slot=MONDAY_17_UTC, status="active")
    db.add(group)
    await db.flush()
    users = []
    for i in range(60):
        user = await make_user(db, nickname=f"P{i}")
        signup = await make_signup(db, cohort, user=user, status="grouped")
        db.add(GroupMember(group_id=group.id, signup_id=signup.id, role="participant"))
        users.append(user)
        if i:  # P0 has not joined the server
            fake.members.add(user.discord_id)
    # Others in the server, on more than one page of the list.
    fake.members.update(str(10**18 + n) for n in range(1500))
    await db.flush()

    report = await realize_cohort(
        db, cohort_id=cohort.id, guild=fake.client(), base_url=BASE, bot_user_id=BOT_ID
    )

    assert fake.member_lists == 2  # 1,559 members: two pages of up to 1,000
    member_gets = [r for r in fake.requests if r.method == "GET" and "/members/" in r.url.path]
    assert member_gets == []
    assert report.skipped == ["P0 (Group 1): not in the Discord server yet; gets access on joining"]
    text = next(c for c in fake.channels.values() if c["type"] == 0)
    allowed = {o["id"] for o in text["permission_overwrites"] if o["type"] == 1}
    assert {u.discord_id for u in users[1:]} <= allowed and users[0].discord_id not in allowed


async def test_a_stand_in_or_guest_has_the_channels_for_the_week_of_their_meeting(
    db: AsyncSession,
) -> None:
    from lens.meetings.models import MeetingGuest

    fake = FakeGuild()
    world = await build(db, fake)
    await run(db, fake, world)
    sam = await make_user(db, nickname="Sam")
    gil = await make_user(db, nickname="Gil")
    fake.members |= {sam.discord_id, gil.discord_id}
    stand_in = await make_signup(db, world.cohort, user=sam, role="facilitator", status="unplaced")
    visitor = await make_signup(db, world.cohort, user=gil, status="grouped")
    first = world.meetings[world.groups[0].id][0]
    # A meeting more than a week away gives nothing yet.
    first.substitute_signup_id = stand_in.id
    db.add(MeetingGuest(meeting_id=first.id, signup_id=visitor.id))
    await db.flush()
    await run(db, fake, world)
    assert sam.discord_id not in fake.overwrites(fake.named("group-1"))
    # Within the week: both get the group's channels, and the welcome post stays as it is.
    first.starts_at = datetime.now(UTC) + timedelta(days=2)
    first.ends_at = first.starts_at + timedelta(hours=1)
    await db.flush()
    await run(db, fake, world)
    for person in (sam, gil):
        assert fake.overwrites(fake.named("group-1"))[person.discord_id] == (1, TEXT_ALLOW, 0)
        assert fake.overwrites(fake.named("Group 1"))[person.discord_id] == (1, VOICE_ALLOW, 0)
        assert person.discord_id not in fake.overwrites(fake.named("group-2"))
    # The welcome post (rewritten for the meeting's new time) lists the group, not them.
    [welcome] = fake.messages_in(fake.named("group-1"))
    assert "Sam" not in welcome["content"] and sam.discord_id not in welcome["content"]
    assert "Gil" not in welcome["content"]
    # Once that meeting is over, the access goes.
    first.starts_at = datetime.now(UTC) - timedelta(hours=2)
    first.ends_at = first.starts_at + timedelta(hours=1)
    await db.flush()
    await run(db, fake, world)
    assert sam.discord_id not in fake.overwrites(fake.named("group-1"))
    assert gil.discord_id not in fake.overwrites(fake.named("Group 1"))
