"""Google Calendar for meetings: one event per meeting with the group's members invited,
kept in line with the meeting by a job, and the members' answers read back every six
hours. Only jobs call Google (the client is synchronous, in a thread, and paced); with
GOOGLE_CALENDAR_* unset there is no client and every job here does nothing.

`meeting.calendar_event_id` is set while a live event exists in Google: it is cleared
when the event is cancelled, so a meeting moved back from "cancelled" gets its event
restored (an insert of the same id answers 409 and the client patches it back).

RSVPs: Google's answer fills in and updates answers that came from Google; "no answer
yet" there (needsAction) never replaces an answer; and an answer given on the site is
never overwritten by Google's. Why the last: the site does not write answers back to
Google, and we do not store what Google said before, so a Google answer older than the
site answer (say, "accepted" a week ago, then "not attending" on the site) could not be
told apart from a newer one, and would undo the site answer every six hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import Cohort, Group, GroupMember, GroupStatus, Signup
from lens.db.base import utcnow
from lens.integrations.google_calendar import (
    Calendar,
    CalendarEvent,
    GoogleCalendar,
    GoogleCalendarRejected,
    event_id_for,
)
from lens.jobs.models import Job, JobStatus
from lens.jobs.registry import JobContext, registry
from lens.logging import get_logger
from lens.meetings.models import Meeting, MeetingGuest, Rsvp, RsvpStatus
from lens.meetings.service import describe_meeting, event_location
from lens.users.models import User

log = get_logger("lens.meetings.calendar")

RSVP_SYNC_KIND = "meetings.rsvp_sync"
RSVP_WINDOW = timedelta(days=7)
GOOGLE_ANSWERS = {
    "needsAction": RsvpStatus.PENDING,
    "accepted": RsvpStatus.ATTENDING,
    "declined": RsvpStatus.NOT_ATTENDING,
    "tentative": RsvpStatus.TENTATIVE,
}


def calendar_for(ctx: JobContext) -> Calendar | None:
    """The calendar a job talks to: one put in `ctx.extras` (tests, or a client shared by
    the process), else a client from the settings, else None (not configured)."""
    injected: Calendar | None = ctx.extras.get("calendar")
    if injected is not None:
        return injected
    return GoogleCalendar.from_settings(ctx.settings)


async def _attendee_emails(session: AsyncSession, *, meeting: Meeting) -> tuple[str, ...]:
    """The group's members, a facilitator standing in for this meeting, and its guests."""
    members = select(GroupMember.signup_id).where(GroupMember.group_id == meeting.group_id)
    guests = select(MeetingGuest.signup_id).where(MeetingGuest.meeting_id == meeting.id)
    wanted = Signup.id.in_(members) | Signup.id.in_(guests)
    if meeting.substitute_signup_id is not None:
        wanted = wanted | (Signup.id == meeting.substitute_signup_id)
    rows = await session.scalars(
        select(User.email)
        .join(Signup, Signup.user_id == User.id)
        .where(wanted, User.email.is_not(None))
        .order_by(User.id)
    )
    return tuple(dict.fromkeys(email for email in rows if email))


async def sync_meeting_event(
    session: AsyncSession, *, calendar: Calendar, meeting_id: int, base_url: str
) -> str:
    """Create, update or cancel the meeting's event so it matches the meeting now.

    Returns what it did: created, updated, cancelled, or why it did nothing.
    """
    # Locked (PostgreSQL) for the call: a second sync of the same meeting, queued by a
    # change made while this one runs, waits and then sends the newest state last.
    meeting = await session.get(Meeting, meeting_id, with_for_update=True, populate_existing=True)
    if meeting is None:
        return "gone"
    if meeting.ends_at <= utcnow():
        return "over"  # nobody needs an update (and its e-mail) about a past meeting
    group = await session.get(Group, meeting.group_id)
    cohort = await session.get(Cohort, group.cohort_id) if group else None
    if group is None or cohort is None:
        return "gone"
    if meeting.status != "scheduled" or group.status != GroupStatus.ACTIVE:
        if meeting.calendar_event_id is None:
            return "no event"
        await calendar.cancel_event(meeting.calendar_event_id)
        meeting.calendar_event_id = None
        await session.flush()
        return "cancelled"
    event = CalendarEvent(
        summary=f"{cohort.name}: {group.name}, meeting {meeting.number}",
        description=describe_meeting(meeting, group, cohort, base_url=base_url),
        location=event_location(group),
        start=meeting.starts_at,
        end=meeting.ends_at,
        attendees=await _attendee_emails(session, meeting=meeting),
        event_id=meeting.calendar_event_id or event_id_for("meeting", meeting.id),
    )
    if meeting.calendar_event_id is not None:
        try:
            await calendar.patch_event(event)
            return "updated"
        except GoogleCalendarRejected as exc:
            if exc.status not in (404, 410):
                raise
            # Deleted in Google by hand: make it again below.
            log.info("meetings.calendar.event_missing", meeting=meeting.id, status=exc.status)
    meeting.calendar_event_id = await calendar.upsert_event(event)
    await session.flush()
    return "created"


async def sync_rsvps(
    session: AsyncSession, *, calendar: Calendar, now: datetime | None = None
) -> int:
    """Read the answers to the events of meetings in the next seven days (one batched
    call) into the members' RSVPs; returns how many RSVPs were added or changed."""
    now = now or utcnow()
    meetings = list(
        await session.scalars(
            select(Meeting)
            .join(Group, Group.id == Meeting.group_id)
            .where(
                Meeting.status == "scheduled",
                Meeting.calendar_event_id.is_not(None),
                Meeting.ends_at > now,
                Meeting.starts_at <= now + RSVP_WINDOW,
                Group.status == GroupStatus.ACTIVE,
            )
            .order_by(Meeting.starts_at)
        )
    )
    if not meetings:
        return 0
    answers = await calendar.responses(
        [m.calendar_event_id for m in meetings if m.calendar_event_id]
    )
    members: dict[int, dict[str, int]] = {}
    rows = await session.execute(
        select(GroupMember.group_id, User.id, User.email)
        .join(Signup, Signup.id == GroupMember.signup_id)
        .join(User, User.id == Signup.user_id)
        .where(
            GroupMember.group_id.in_(sorted({m.group_id for m in meetings})),
            User.email.is_not(None),
        )
    )
    for group_id, member_id, email in rows.all():
        if email:
            members.setdefault(group_id, {})[email.strip().lower()] = member_id
    existing = {
        (r.meeting_id, r.user_id): r
        for r in await session.scalars(
            select(Rsvp).where(Rsvp.meeting_id.in_([m.id for m in meetings]))
        )
    }
    changed = 0
    for meeting in meetings:
        assert meeting.calendar_event_id is not None
        for email, google in answers.get(meeting.calendar_event_id, {}).items():
            user_id = members.get(meeting.group_id, {}).get(email.lower())
            status = GOOGLE_ANSWERS.get(google)
            if user_id is None or status is None:
                continue  # not (any more) a member with this address, or an unknown answer
            rsvp = existing.get((meeting.id, user_id))
            if rsvp is None:
                session.add(
                    Rsvp(meeting_id=meeting.id, user_id=user_id, status=status, source="google")
                )
                changed += 1
            elif status == RsvpStatus.PENDING or rsvp.source != "google":
                continue  # see the module's docstring
            elif rsvp.status != status:
                rsvp.status = status
                changed += 1
    await session.flush()
    return changed


async def record_rejection(
    session: AsyncSession, *, ctx: JobContext, payload: dict[str, Any], error: Exception
) -> None:
    """Google refused (bad request, no permission) or its credentials file is unreadable:
    the same call would fail again, so the job is not retried. Instead a failed job row
    with the error is added, which an admin sees with the other failed jobs and can
    retry (`retry_failed`) once the cause is fixed. The runner retries whatever a
    handler raises, so raising is no way to say "do not retry"."""
    text = f"{type(error).__name__}: {error}"
    kind = registry.get(ctx.kind)
    log.error("meetings.calendar.rejected", kind=ctx.kind, job_id=ctx.job_id, error=text)
    now = utcnow()
    session.add(
        Job(
            kind=ctx.kind,
            payload=payload,
            run_at=now,
            status=JobStatus.FAILED,
            attempts=1,
            # What a retry by an admin gets (it starts again from zero attempts).
            max_attempts=kind.max_attempts if kind else 5,
            last_error=f"Not retried (job {ctx.job_id}); fix the cause, then retry: {text}",
            finished_at=now,
        )
    )
    await session.flush()
