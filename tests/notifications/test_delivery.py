"""Notifications end to end: asked for by the cause, checked again and sent by the
sender, each outcome recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from lens.auth.visitors import user_actor
from lens.cohorts.models import Group, GroupMember
from lens.content.files import read_folder
from lens.content.parsing import load_content
from lens.courses.service import complete_section
from lens.db.base import utcnow
from lens.errors import IntegrationUnavailable
from lens.meetings.service import cancel_meeting, create_meetings, move_meetings
from lens.notifications.announce import announce_group
from lens.notifications.context import Site
from lens.notifications.models import Delivery, DeliveryAttempt, DeliveryStatus
from lens.notifications.sender import DeliverySender
from lens.notifications.service import notify, set_preference
from lens.users.models import User
from lens.web.messages import local_time
from tests.fixtures.cohorts import make_cohort, make_signup
from tests.notifications.fakes import RecordingDiscord, RecordingEmail

ROOT = Path(__file__).resolve().parents[2]
CONTENT = load_content(read_folder(ROOT / "examples" / "course"))
SITE = Site(
    base_url="https://lens.example.org", secret="s" * 40, from_email="team@x.org", content=CONTENT
)
EVERY_SLOT = list(range(7 * 48))
MONDAY_17_UTC = 34  # weekly UTC slot


def next_march_first_monday() -> date:
    """A March far enough ahead that every meeting and reminder is in the future; the
    eight weeks from it cross both the US (2nd Sunday) and EU (last Sunday) changes."""
    year = utcnow().year + 1
    first = date(year, 3, 1)
    return first + timedelta(days=(7 - first.weekday()) % 7)


async def group_of(db, zones: list[str], *, start: date, meetings: int = 8):
    cohort = await make_cohort(db, start_date=start, meetings=meetings, meeting_minutes=90)
    signups = [
        await make_signup(
            db,
            cohort,
            role="facilitator" if i == 0 else "participant",
            timezone=zone,
            available=EVERY_SLOT,
        )
        for i, zone in enumerate(zones)
    ]
    group = Group(cohort_id=cohort.id, number=1, start_slot=MONDAY_17_UTC, status="active")
    db.add(group)
    await db.flush()
    for signup in signups:
        db.add(GroupMember(group_id=group.id, signup_id=signup.id, role=signup.role))
    users = [await db.get(User, s.user_id) for s in signups]
    for user, signup in zip(users, signups, strict=True):
        user.email = f"member{user.id}@example.org"
        user.discord_id = str(10**17 + user.id)
        user.timezone = signup.timezone
    await db.flush()
    series = await create_meetings(db, cohort=cohort, group=group)
    return cohort, group, users, series


def sender(sessionmaker, email=None, discord=None) -> DeliverySender:
    # One connection in these tests (rolled back after): one delivery at a time.
    return DeliverySender(
        sessionmaker,
        site=lambda: SITE,
        email=email or RecordingEmail(),
        discord=discord,
        concurrency=1,
    )


async def settle(db) -> None:
    """What is due now (group messages) went out earlier; tests look at what follows."""
    await db.execute(
        update(Delivery)
        .where(Delivery.status == DeliveryStatus.PENDING, Delivery.send_at <= utcnow())
        .values(status=DeliveryStatus.SENT)
    )
    await db.flush()


async def make_due(db, **where) -> None:
    """Time passes: these deliveries' send time is now."""
    query = update(Delivery).values(send_at=utcnow() - timedelta(seconds=5))
    for name, value in where.items():
        query = query.where(getattr(Delivery, name) == value)
    await db.execute(query)
    await db.flush()


async def test_six_people_in_four_zones_across_dst_changes(db, sessionmaker) -> None:
    zones = [
        "Europe/Berlin",  # the facilitator: the series keeps 18:00 Berlin
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Sydney",
        "Europe/Berlin",
        "America/New_York",
    ]
    start = next_march_first_monday()
    _, group, users, series = await group_of(db, zones, start=start)
    berlin = ZoneInfo("Europe/Berlin")
    assert [m.starts_at.astimezone(berlin).strftime("%H:%M") for m in series] == ["18:00"] * 8
    assert len({m.starts_at.astimezone(UTC).hour for m in series}) == 2  # UTC moves once

    added = await announce_group(db, group_id=group.id)
    rows = list(await db.scalars(select(Delivery)))
    # 6 people x 2 channels x (group message + 8 meetings x 4 timed kinds)
    assert added == len(rows) == 6 * 2 * (1 + 8 * 4)
    by_meeting = {m.id: m for m in series}
    offsets = {
        "meeting_reminder_24h": timedelta(hours=24),
        "meeting_reminder_1h": timedelta(hours=1),
        "module_nudge_3d": timedelta(days=3),
        "module_nudge_1d": timedelta(days=1),
    }
    for row in rows:
        if row.kind in offsets:
            meeting = by_meeting[row.context["meeting_id"]]
            assert row.send_at == meeting.starts_at - offsets[row.kind]

    # The day-before reminder of meeting 6 (after both changes) and of meeting 1, by e-mail.
    await settle(db)
    email = RecordingEmail()
    for number in (1, 6):
        meeting = series[number - 1]
        await db.execute(
            update(Delivery)
            .where(
                Delivery.kind == "meeting_reminder_24h",
                Delivery.channel == "email",
                Delivery.context["meeting_id"].as_integer() == meeting.id,
            )
            .values(send_at=utcnow() - timedelta(minutes=1))
        )
        await db.flush()
        assert await sender(sessionmaker, email).run_once() == 6
        for user, zone in zip(users, zones, strict=True):
            (message,) = email.to(user.email)[-1:]
            expected_local = meeting.starts_at.astimezone(ZoneInfo(zone))
            assert f"{expected_local:%H:%M} ({zone})" in message.text
            assert local_time(meeting.starts_at, zone) in message.subject
    first, sixth = series[0], series[5]
    # Hand-checked: 18:00 Berlin is 12:00 New York before 14 March and after the EU
    # change; 22:30 / 21:30 in Kolkata; 04:00 next day in Sydney, 02:00 after 4 April.
    ny, kolkata, sydney = users[1].email, users[2].email, users[3].email
    assert "12:00 (America/New_York)" in email.to(ny)[0].text
    assert "12:00 (America/New_York)" in email.to(ny)[1].text
    assert "22:30 (Asia/Kolkata)" in email.to(kolkata)[0].text
    assert "21:30 (Asia/Kolkata)" in email.to(kolkata)[1].text
    assert "04:00 (Australia/Sydney)" in email.to(sydney)[0].text
    assert "02:00 (Australia/Sydney)" in email.to(sydney)[1].text
    assert first.starts_at.hour == 17 and sixth.starts_at.hour == 16


async def test_sent_once_and_each_attempt_recorded(db, sessionmaker) -> None:
    _, group, users, _ = await group_of(db, ["UTC", "UTC"], start=next_march_first_monday())
    await notify(
        db,
        kind="group_assigned",
        user_ids=[u.id for u in users],
        subject=f"group:{group.id}",
        context={"group_id": group.id},
    )
    again = await notify(
        db,
        kind="group_assigned",
        user_ids=[u.id for u in users],
        subject=f"group:{group.id}",
        context={"group_id": group.id},
    )
    assert again == 0  # asked twice, one row per person and channel
    email, discord = RecordingEmail(), RecordingDiscord()
    assert await sender(sessionmaker, email, discord).run_once() == 4
    assert await sender(sessionmaker, email, discord).run_once() == 0
    assert len(email.sent) == 2 and len(discord.sent) == 2
    message = email.sent[0]
    assert message.subject.startswith("Your group for Spring 2027: Group 1, Mondays at 17:00 (UTC)")
    (invite,) = message.attachments
    assert invite.content_type == "text/calendar; method=REQUEST; charset=UTF-8"
    assert invite.content.decode().count("BEGIN:VEVENT") == 8
    assert "METHOD:REQUEST" in invite.content.decode()
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Stable per delivery: a repeat after a crash carries the same Message-ID.
    assert (
        message.headers["Message-ID"] == f"<{message.headers['X-Lens-Delivery']}@lens.example.org>"
    )
    assert all(nonce and len(nonce) <= 25 for _, _, nonce in discord.sent)
    rows = list(await db.scalars(select(Delivery)))
    assert {r.status for r in rows} == {DeliveryStatus.SENT}
    attempts = list(await db.scalars(select(DeliveryAttempt)))
    assert sorted(a.outcome for a in attempts) == ["sent"] * 4


async def test_temporary_failures_retry_later_and_permanent_ones_stop(db, sessionmaker) -> None:
    _, group, users, _ = await group_of(db, ["UTC", "UTC"], start=next_march_first_monday())
    await notify(
        db,
        kind="group_assigned",
        user_ids=[u.id for u in users],
        subject=f"group:{group.id}",
        context={"group_id": group.id},
    )
    email = RecordingEmail(fail_with=IntegrationUnavailable("SendGrid answered HTTP 503"))
    discord = RecordingDiscord(closed_dms={users[0].discord_id})
    await sender(sessionmaker, email, discord).run_once()
    rows = {(r.user_id, r.channel): r for r in await db.scalars(select(Delivery))}
    waiting = rows[(users[0].id, "email")]
    assert waiting.status == DeliveryStatus.PENDING and waiting.attempts == 1
    assert waiting.send_at > utcnow() + timedelta(seconds=20)  # backed off
    assert "503" in waiting.last_error
    refused = rows[(users[0].id, "discord")]
    assert refused.status == DeliveryStatus.FAILED and "turned off" in refused.last_error
    assert rows[(users[1].id, "discord")].status == DeliveryStatus.SENT
    # The provider is back: the retry goes out, once.
    email.fail_with = None
    await make_due(db, status=DeliveryStatus.PENDING)
    await sender(sessionmaker, email, discord).run_once()
    await db.refresh(waiting)
    assert waiting.status == DeliveryStatus.SENT and waiting.attempts == 2
    assert len(email.to(users[0].email)) == 1
    outcomes = list(
        await db.scalars(
            select(DeliveryAttempt.outcome)
            .where(DeliveryAttempt.delivery_id == waiting.id)
            .order_by(DeliveryAttempt.number)
        )
    )
    assert outcomes == ["temporary", "sent"]


async def test_stale_late_and_unwanted_notifications_are_dropped(db, sessionmaker) -> None:
    _, group, users, series = await group_of(db, ["UTC", "UTC"], start=next_march_first_monday())
    await announce_group(db, group_id=group.id)
    # Meeting 2 moves a day later, meeting 3 is cancelled, meeting 4's reminder is late.
    await move_meetings(
        db, group=group, number=2, new_start=series[1].starts_at + timedelta(days=1),
        all_future=False,
    )  # fmt: skip
    await cancel_meeting(db, group=group, number=3)
    await set_preference(
        db, user_id=users[1].id, kind="meeting_reminder_1h", channel="email", enabled=False
    )
    dropped_on_change = await db.scalar(
        select(Delivery.id).where(
            Delivery.status == DeliveryStatus.DROPPED, Delivery.last_error == "the meeting moved"
        )
    )
    assert dropped_on_change is not None
    await settle(db)
    await make_due(db, kind="meeting_reminder_1h", channel="email")
    two_hours_ago = utcnow() - timedelta(hours=2)
    for row in await db.scalars(
        select(Delivery).where(
            Delivery.kind == "meeting_reminder_1h",
            Delivery.context["meeting_id"].as_integer() == series[3].id,
        )
    ):
        row.send_at = two_hours_ago
        row.context = {**row.context, "due_at": two_hours_ago.isoformat()}
    await db.flush()
    email = RecordingEmail()
    await sender(sessionmaker, email).run_once()
    reasons = {
        (r.user_id, r.context.get("meeting_id"), r.last_error)
        for r in await db.scalars(
            select(Delivery)
            .where(
                Delivery.kind == "meeting_reminder_1h",
                Delivery.channel == "email",
                Delivery.status == DeliveryStatus.DROPPED,
            )
            # The sender wrote these rows in its own session; this one holds some of them
            # from the loop above, so read what is in the database, not what it holds.
            .execution_options(populate_existing=True)
        )
    }
    first = users[0].id
    assert (first, series[3].id, "too late: due 120 minutes ago") in reasons
    assert any(r == "unsubscribed from this kind" for u, _, r in reasons if u == users[1].id)
    # Meeting 2's reminder went out at its new time only; meeting 3's not at all.
    texts = [m.text for m in email.to(users[0].email)]
    moved = series[1].starts_at  # the object was moved in place
    assert any(local_time(moved, "UTC") in t for t in texts)
    assert not any(local_time(series[2].starts_at, "UTC") in t for t in texts)


async def test_change_and_cancellation_carry_calendar_updates(db, sessionmaker) -> None:
    _, group, users, series = await group_of(db, ["UTC", "UTC"], start=next_march_first_monday())
    old = series[1].starts_at
    await move_meetings(
        db, group=group, number=2, new_start=old + timedelta(hours=2), all_future=True
    )
    await cancel_meeting(db, group=group, number=5)
    email = RecordingEmail()
    await sender(sessionmaker, email).run_once()
    changed = [m for m in email.to(users[1].email) if m.subject.startswith("Moved")]
    cancelled = [m for m in email.to(users[1].email) if m.subject.startswith("Cancelled")]
    assert len(changed) == 1 and len(cancelled) == 1
    assert f"Was: {local_time(old, 'UTC')}" in changed[0].text
    assert "Every later meeting" in changed[0].text
    invite = changed[0].attachments[0].content.decode()
    assert "METHOD:REQUEST" in invite and "SEQUENCE:1" in invite
    cancel = cancelled[0].attachments[0].content.decode()
    assert cancelled[0].attachments[0].content_type.startswith("text/calendar; method=CANCEL")
    assert "METHOD:CANCEL" in cancel and "STATUS:CANCELLED" in cancel and "SEQUENCE:2" in cancel


async def test_reading_nudges_only_for_modules_not_yet_done(db, sessionmaker) -> None:
    _, group, users, series = await group_of(db, ["UTC", "UTC"], start=next_march_first_monday())
    await announce_group(db, group_id=group.id)
    reader = users[0]
    await settle(db)
    # The first user finished both required modules due for meeting 1.
    for path in ("modules/welcome.md", "modules/goals-and-means.md"):
        module = CONTENT.modules[path]
        for section in module.sections:
            if not section.optional:
                await complete_section(
                    db,
                    actor=user_actor(reader.id),
                    user_id=reader.id,
                    module=module,
                    content_id=section.content_id,
                )
    await db.execute(
        update(Delivery)
        .where(
            Delivery.kind == "module_nudge_3d",
            Delivery.context["meeting_id"].as_integer() == series[0].id,
        )
        .values(send_at=utcnow() - timedelta(minutes=1))
    )
    await db.flush()
    email = RecordingEmail()
    await sender(sessionmaker, email).run_once()
    assert email.to(reader.email) == []
    (nudge,) = email.to(users[1].email)
    assert "Welcome to the course" in nudge.text and "Goals and means" in nudge.text
    skipped = await db.scalar(
        select(Delivery.last_error).where(
            Delivery.user_id == reader.id,
            Delivery.kind == "module_nudge_3d",
            Delivery.channel == "email",
            Delivery.status == DeliveryStatus.DROPPED,
        )
    )
    assert skipped == "nothing left to read for meeting 1"


@pytest.mark.parametrize("how", ["page", "one-click"])
async def test_unsubscribe_link(app_client, db, how) -> None:
    from lens.notifications.service import unsubscribe_url

    _, _, users, _ = await group_of(db, ["UTC"], start=next_march_first_monday(), meetings=2)
    secret = app_client.app.state.lens.jwt_secret
    url = unsubscribe_url("", secret, users[0].id, "meeting_reminder_24h", "email")
    if how == "page":
        page = await app_client.get(url)
        assert page.status_code == 200 and "meeting reminders, a day before" in page.text
        done = await app_client.post(url, headers={"Origin": "http://lens.test"})
    else:  # a mail client, RFC 8058: no cookie, no Origin
        done = await app_client.post(url, content=b"List-Unsubscribe=One-Click")
    assert done.status_code == 200 and "Done" in done.text
    forged = await app_client.post(url.replace("k=meeting_reminder_24h", "k=welcome"))
    assert forged.status_code == 422 and "not valid" in forged.text
    from lens.notifications.service import opted_out

    assert await opted_out(db, user_id=users[0].id) == {("meeting_reminder_24h", "email")}


async def test_enrolling_sends_a_welcome(db, sessionmaker) -> None:
    from lens.cohorts.service import confirm_signup

    cohort = await make_cohort(db, start_date=next_march_first_monday(), meetings=8)
    signup = await make_signup(db, cohort, timezone="America/New_York", status="draft",
                               available=EVERY_SLOT)  # fmt: skip
    user = await db.get(User, signup.user_id)
    user.email = "new@example.org"
    await db.flush()
    await confirm_signup(db, cohort=cohort, signup=signup, user=user)
    await confirm_signup(db, cohort=cohort, signup=signup, user=user)  # twice: one welcome
    email = RecordingEmail()
    assert await sender(sessionmaker, email).run_once() == 2  # e-mail, and Discord dropped
    (welcome,) = email.sent
    assert welcome.subject == "Welcome to Spring 2027"
    assert "Introduction to AI Safety" in welcome.text
    assert f"starts on {next_march_first_monday():%A} {next_march_first_monday().day}" in (
        welcome.text
    )
    dropped = await db.scalar(select(Delivery.last_error).where(Delivery.channel == "discord"))
    assert dropped == "Discord bot not configured"


async def test_a_meeting_moved_away_and_back_has_its_reminders_again(db, sessionmaker) -> None:
    _, group, _, series = await group_of(db, ["UTC", "UTC"], start=next_march_first_monday())
    await announce_group(db, group_id=group.id)

    async def waiting() -> int:
        return await db.scalar(
            select(func.count()).where(
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.kind.startswith("meeting_reminder"),
                Delivery.context["meeting_id"].as_integer() == series[1].id,
            )
        )

    assert await waiting() == 8  # 2 people x 2 channels x (24 h, 1 h)
    start = series[1].starts_at
    await move_meetings(db, group=group, number=2, new_start=start + timedelta(hours=3),
                        all_future=False)  # fmt: skip
    await move_meetings(db, group=group, number=2, new_start=start, all_future=False)
    assert await waiting() == 8


async def test_lateness_counts_from_the_first_send_time_across_retries(db, sessionmaker) -> None:
    _, group, _, series = await group_of(db, ["UTC", "UTC"], start=next_march_first_monday())
    await announce_group(db, group_id=group.id)
    await settle(db)
    due = utcnow() - timedelta(minutes=25)
    for row in await db.scalars(
        select(Delivery).where(
            Delivery.kind == "meeting_reminder_1h",
            Delivery.context["meeting_id"].as_integer() == series[0].id,
        )
    ):
        row.context = {**row.context, "due_at": due.isoformat()}
        row.send_at = due
    await db.flush()
    email = RecordingEmail(fail_with=IntegrationUnavailable("down"))
    await sender(sessionmaker, email).run_once()  # 25 minutes late: tried, failed
    # The retry comes round 10 minutes later still: 35 minutes late, over the 30 allowed.
    for row in await db.scalars(select(Delivery).where(Delivery.status == "pending",
                                                         Delivery.context["due_at"].as_string()
                                                         == due.isoformat())):  # fmt: skip
        row.context = {**row.context, "due_at": (due - timedelta(minutes=10)).isoformat()}
        row.send_at = utcnow() - timedelta(seconds=1)
    await db.flush()
    email.fail_with = None
    await sender(sessionmaker, email).run_once()
    assert email.sent == []
    reasons = set(
        await db.scalars(
            select(Delivery.last_error).where(
                Delivery.kind == "meeting_reminder_1h",
                Delivery.context["meeting_id"].as_integer() == series[0].id,
                Delivery.channel == "email",
            )
        )
    )
    assert reasons == {"too late: due 35 minutes ago"}


async def test_a_late_joiner_hears_of_meetings_ahead_only(db, sessionmaker) -> None:
    _, group, users, series = await group_of(db, ["UTC", "UTC"], start=next_march_first_monday())
    # The first two meetings are over by the time the message goes out.
    for meeting in series[:2]:
        meeting.starts_at -= timedelta(days=400)
        meeting.ends_at -= timedelta(days=400)
    await db.flush()
    await notify(db, kind="group_assigned", user_ids=[users[1].id], subject=f"group:{group.id}",
                 context={"group_id": group.id}, channels=("email",))  # fmt: skip
    email = RecordingEmail()
    await sender(sessionmaker, email).run_once()
    (message,) = email.sent
    assert f"the first on {local_time(series[2].starts_at, 'UTC')}" in message.text
    assert message.attachments[0].content.decode().count("BEGIN:VEVENT") == 6


async def test_a_batch_that_outlasts_its_lease_is_not_taken_over(committing_sessionmaker) -> None:
    from tests.fixtures.users import make_user

    async with committing_sessionmaker() as session, session.begin():
        users = [await make_user(session, email=f"slow{i}@example.org") for i in range(4)]
        cohort = await make_cohort(session, start_date=next_march_first_monday())
        signups = [await make_signup(session, cohort, user=u, available=EVERY_SLOT) for u in users]
        group = Group(cohort_id=cohort.id, number=1, start_slot=MONDAY_17_UTC, status="active")
        session.add(group)
        await session.flush()
        for signup in signups:
            session.add(GroupMember(group_id=group.id, signup_id=signup.id, role="participant"))
        await session.flush()
        await create_meetings(session, cohort=cohort, group=group)
        await notify(session, kind="group_assigned", user_ids=[u.id for u in users],
                     subject=f"group:{group.id}", context={"group_id": group.id},
                     channels=("email",))  # fmt: skip

    class SlowEmail(RecordingEmail):
        async def send(self, session, message) -> None:
            await asyncio.sleep(0.8)
            await super().send(session, message)

    email = SlowEmail()

    def slow_sender() -> DeliverySender:
        return DeliverySender(
            committing_sessionmaker, site=lambda: SITE, email=email, discord=None,
            concurrency=1, lease=timedelta(seconds=1.2),
        )  # fmt: skip

    # 4 x 0.8 s > the 1.2 s lease; renewed every 0.4 s, so a busy machine may be late
    # with one renewal without losing it.
    first = asyncio.create_task(slow_sender().run_once())
    await asyncio.sleep(1.8)
    assert await slow_sender().run_once() == 0  # still renewed: nothing to take over
    await first
    assert sorted(m.to for m in email.sent) == sorted(u.email for u in users)


async def test_a_finished_cohort_gets_no_more_meeting_messages(db, sessionmaker) -> None:
    cohort, group, users, _ = await group_of(db, ["UTC"], start=next_march_first_monday())
    await announce_group(db, group_id=group.id)
    await settle(db)
    cohort.status = "finished"  # ended early: meetings were still ahead
    await db.flush()
    await make_due(db, kind="meeting_reminder_24h", channel="email")
    email = RecordingEmail()
    await sender(sessionmaker, email).run_once()
    reasons = set(
        await db.scalars(
            select(Delivery.last_error)
            .where(Delivery.kind == "meeting_reminder_24h", Delivery.channel == "email")
            .execution_options(populate_existing=True)
        )
    )
    assert reasons == {"the cohort has finished: no more meetings"}
    assert email.to(users[0].email) == []
