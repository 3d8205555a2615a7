"""Google Calendar events follow the meetings: created with the group invited, moved,
cancelled, updated when someone joins; always through jobs, never without settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from lens.cohorts.models import Group, GroupMember
from lens.db.base import utcnow
from lens.errors import IntegrationUnavailable
from lens.integrations.google_calendar import GoogleCalendar, GoogleCalendarRejected, event_id_for
from lens.jobs.models import Job, JobStatus
from lens.jobs.registry import JobContext
from lens.jobs.runner import JobRunner
from lens.jobs.service import retry_failed
from lens.meetings import tasks
from lens.meetings.models import Meeting
from lens.meetings.service import CALENDAR_SYNC_KIND, cancel_meeting, create_meetings, move_meetings
from lens.scheduling.joiners import join_group
from lens.users.models import User
from tests.fixtures.cohorts import make_cohort, make_signup
from tests.meetings.fakes import FakeCalendar

EVERY_SLOT = list(range(7 * 48))
MONDAY_18_UTC = 36
PUBLIC_URL = "https://lens.example.org"


def next_monday(days_ahead: int = 60) -> date:
    day = utcnow().date() + timedelta(days=days_ahead)
    return day + timedelta(days=(7 - day.weekday()) % 7)


async def group_with_meetings(db, *, meetings: int = 4):
    """A facilitator and three members (the last has no e-mail address), meetings made."""
    cohort = await make_cohort(db, start_date=next_monday(), meetings=meetings)
    signups = [await make_signup(db, cohort, role="facilitator", available=EVERY_SLOT)]
    signups += [await make_signup(db, cohort, available=EVERY_SLOT) for _ in range(3)]
    group = Group(cohort_id=cohort.id, number=1, start_slot=MONDAY_18_UTC, status="active")
    db.add(group)
    await db.flush()
    for signup in signups:
        db.add(GroupMember(group_id=group.id, signup_id=signup.id, role=signup.role))
    users = [await db.get(User, s.user_id) for s in signups]
    users[-1].email = None
    await db.flush()
    series = await create_meetings(db, cohort=cohort, group=group)
    return cohort, group, users, series


@pytest.fixture
def settings(make_settings):
    return make_settings(FRONTEND_URL=PUBLIC_URL)


@pytest.fixture
def calendar(monkeypatch) -> FakeCalendar:
    """Google Calendar "configured": the jobs' client is this fake."""
    fake = FakeCalendar()
    monkeypatch.setattr(GoogleCalendar, "from_settings", classmethod(lambda cls, settings: fake))
    return fake


async def run_jobs(db, sessionmaker, settings) -> None:
    """Commit (the test's savepoint) and let a real runner do whatever is due."""
    await db.commit()
    # One connection under the test: one job at a time.
    runner = JobRunner(sessionmaker, settings=settings, concurrency=1, poll_seconds=0.05)
    await runner.run_until_idle()


async def fresh(db, meeting_id: int) -> Meeting:
    meeting = await db.get(Meeting, meeting_id, populate_existing=True)
    assert meeting is not None
    return meeting


async def sync_jobs(db) -> list[Job]:
    return list(
        await db.scalars(
            select(Job)
            .where(Job.kind == CALENDAR_SYNC_KIND)
            .order_by(Job.id)
            .execution_options(populate_existing=True)
        )
    )


async def test_new_meetings_get_one_event_each_with_the_group_invited(
    db, sessionmaker, settings, calendar
) -> None:
    cohort, group, users, series = await group_with_meetings(db)
    queued = await sync_jobs(db)
    assert [j.payload for j in queued] == [{"meeting_id": m.id} for m in series]
    await create_meetings(db, cohort=cohort, group=group)  # an existing series: no new jobs
    assert len(await sync_jobs(db)) == 4

    await run_jobs(db, sessionmaker, settings)

    assert {j.status for j in await sync_jobs(db)} == {JobStatus.SUCCEEDED}
    assert calendar.calls == [("upsert", event_id_for("meeting", m.id)) for m in series]
    second = await fresh(db, series[1].id)
    assert second.calendar_event_id == event_id_for("meeting", second.id)
    event = calendar.events[second.calendar_event_id]
    assert event.summary == f"{cohort.name}: Group 1, meeting 2"
    assert f"{PUBLIC_URL}/groups/{group.id}" in event.description
    assert (event.start, event.end) == (second.starts_at, second.ends_at)
    # Everyone with an address, the facilitator included; not the member without one.
    assert event.attendees == tuple(u.email for u in users[:3])


async def test_moves_patch_the_event_and_a_cancellation_cancels_it(
    db, sessionmaker, settings, calendar
) -> None:
    _, group, _, series = await group_with_meetings(db)
    await run_jobs(db, sessionmaker, settings)
    calendar.calls.clear()
    second = series[1]
    event_id = event_id_for("meeting", second.id)

    new_start = second.starts_at + timedelta(days=1, hours=2)
    await move_meetings(db, group=group, number=2, new_start=new_start, all_future=False)
    await run_jobs(db, sessionmaker, settings)
    assert calendar.calls == [("patch", event_id)]
    assert calendar.events[event_id].start == new_start
    assert calendar.events[event_id].end == new_start + timedelta(minutes=60)

    calendar.calls.clear()
    await cancel_meeting(db, group=group, number=2)
    await run_jobs(db, sessionmaker, settings)
    assert calendar.calls == [("cancel", event_id)]
    assert (await fresh(db, second.id)).calendar_event_id is None

    # Moved again, the cancelled meeting is back: its event is made again (same id).
    calendar.calls.clear()
    later = new_start + timedelta(days=1)
    await move_meetings(db, group=group, number=2, new_start=later, all_future=False)
    await run_jobs(db, sessionmaker, settings)
    assert calendar.calls == [("upsert", event_id)] and event_id not in calendar.cancelled
    assert (await fresh(db, second.id)).calendar_event_id == event_id


async def test_moving_all_later_meetings_updates_each_event(
    db, sessionmaker, settings, calendar
) -> None:
    _, group, _, series = await group_with_meetings(db)
    await run_jobs(db, sessionmaker, settings)
    calendar.calls.clear()
    shift = timedelta(hours=1)
    await move_meetings(
        db, group=group, number=3, new_start=series[2].starts_at + shift, all_future=True
    )
    await run_jobs(db, sessionmaker, settings)
    assert sorted(calendar.calls) == sorted(
        ("patch", event_id_for("meeting", m.id)) for m in series[2:]
    )
    for meeting in series[2:]:
        current = await fresh(db, meeting.id)
        assert calendar.events[current.calendar_event_id].start == current.starts_at


async def test_a_late_joiner_is_added_to_the_events_ahead(
    db, sessionmaker, settings, calendar
) -> None:
    cohort, group, _, series = await group_with_meetings(db)
    await run_jobs(db, sessionmaker, settings)
    # The first meeting is over by the time Lee joins.
    first = await fresh(db, series[0].id)
    first.starts_at, first.ends_at = utcnow() - timedelta(hours=2), utcnow() - timedelta(hours=1)
    late = await make_signup(db, cohort, available=EVERY_SLOT)
    cohort.status = "running"
    await db.flush()
    calendar.calls.clear()
    await join_group(db, cohort=cohort, signup=late, group_id=group.id)

    await run_jobs(db, sessionmaker, settings)
    late_email = (await db.get(User, late.user_id)).email
    assert sorted(calendar.calls) == sorted(
        ("patch", event_id_for("meeting", m.id)) for m in series[1:]
    )
    assert all(late_email in calendar.events[event_id_for("meeting", m.id)].attendees
               for m in series[1:])  # fmt: skip
    assert late_email not in calendar.events[event_id_for("meeting", series[0].id)].attendees


async def test_without_google_calendar_settings_the_job_does_nothing(
    db, sessionmaker, settings
) -> None:
    _, _, _, series = await group_with_meetings(db)
    await run_jobs(db, sessionmaker, settings)  # GOOGLE_CALENDAR_* unset
    assert {j.status for j in await sync_jobs(db)} == {JobStatus.SUCCEEDED}
    assert [(await fresh(db, m.id)).calendar_event_id for m in series] == [None] * 4


async def test_the_job_uses_a_calendar_given_in_its_context(db, settings) -> None:
    _, _, _, series = await group_with_meetings(db)
    fake = FakeCalendar()
    ctx = JobContext(
        session=db, job_id=1, kind=CALENDAR_SYNC_KIND, attempt=1, settings=settings,
        extras={"calendar": fake},
    )  # fmt: skip
    await tasks.calendar_sync(ctx, {"meeting_id": series[0].id})
    assert fake.calls == [("upsert", event_id_for("meeting", series[0].id))]


async def test_google_unavailable_makes_the_job_retry_later(
    db, sessionmaker, settings, calendar
) -> None:
    _, _, _, series = await group_with_meetings(db, meetings=1)
    calendar.fail_with = IntegrationUnavailable("Google Calendar busy (503): backend error")
    ctx = JobContext(
        session=db, job_id=1, kind=CALENDAR_SYNC_KIND, attempt=1, settings=settings,
        extras={"calendar": calendar},
    )  # fmt: skip
    with pytest.raises(IntegrationUnavailable):
        await tasks.calendar_sync(ctx, {"meeting_id": series[0].id})

    await run_jobs(db, sessionmaker, settings)
    (job,) = await sync_jobs(db)
    assert job.status == JobStatus.QUEUED and job.attempts == 1
    assert job.run_at > utcnow() and "backend error" in (job.last_error or "")
    assert job.max_attempts == tasks.CALENDAR_SYNC_ATTEMPTS
    assert (await fresh(db, series[0].id)).calendar_event_id is None


async def test_google_rejecting_is_recorded_for_an_admin_and_not_retried(
    db, sessionmaker, settings, calendar
) -> None:
    _, _, _, series = await group_with_meetings(db, meetings=1)
    calendar.fail_with = GoogleCalendarRejected(
        "Google Calendar refused the request (400 invalid): Invalid attendee email.",
        status=400,
        reason="invalid",
    )
    await run_jobs(db, sessionmaker, settings)
    jobs = await sync_jobs(db)
    assert [(j.status, j.attempts) for j in jobs] == [
        (JobStatus.SUCCEEDED, 1),  # not tried again: it would be refused again
        (JobStatus.FAILED, 1),  # the record an admin sees
    ]
    record = jobs[1]
    assert record.payload == {"meeting_id": series[0].id}
    assert "Invalid attendee email" in (record.last_error or "")

    # Fixed: an admin's retry makes the event.
    calendar.fail_with = None
    assert await retry_failed(db, job_id=record.id)
    await run_jobs(db, sessionmaker, settings)
    assert calendar.calls == [("upsert", event_id_for("meeting", series[0].id))]


async def test_past_and_gone_meetings_are_left_alone(db, settings) -> None:
    _, _, _, series = await group_with_meetings(db, meetings=1)
    meeting = series[0]
    meeting.starts_at = datetime(2020, 1, 6, 18, tzinfo=UTC)
    meeting.ends_at = meeting.starts_at + timedelta(hours=1)
    await db.flush()
    fake = FakeCalendar()
    ctx: Any = JobContext(
        session=db, job_id=1, kind=CALENDAR_SYNC_KIND, attempt=1, settings=settings,
        extras={"calendar": fake},
    )  # fmt: skip
    await tasks.calendar_sync(ctx, {"meeting_id": meeting.id})
    await tasks.calendar_sync(ctx, {"meeting_id": meeting.id + 1000})
    assert fake.calls == []
