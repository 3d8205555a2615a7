"""Meetings of active groups: when they are, and private calendar feeds of them.

A group meets weekly at its start slot, from the first such time on or after the
cohort's start date. The series keeps the wall-clock time of one zone (its anchor)
across DST changes, so a meeting at 18:00 Berlin stays at 18:00 Berlin. The anchor is
the facilitator's zone, or else the zone most members share, as long as every member
can still make every meeting at those times; otherwise the series keeps one UTC time,
which grouping guaranteed everyone can make in every week.
"""

from __future__ import annotations

import secrets
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from lens.auth.service import token_hash
from lens.cohorts.availability import to_utc
from lens.cohorts.models import (
    Cohort,
    CohortStatus,
    Group,
    GroupMember,
    GroupStatus,
    Role,
    Signup,
)
from lens.cohorts.service import availability_of
from lens.db.base import utcnow
from lens.errors import Conflict, Forbidden, Invalid, NotFound
from lens.events import publish
from lens.jobs.service import coalesce, enqueue
from lens.meetings.events import MeetingCancelled, MeetingMove, MeetingsMoved
from lens.meetings.ical import IcsEvent, render_calendar
from lens.meetings.models import CalendarFeed, Meeting, MeetingGuest, Rsvp, RsvpStatus
from lens.users.models import User

SLOT = timedelta(minutes=30)
CALENDAR_SYNC_KIND = "meetings.calendar_sync"


def first_start(cohort: Cohort, start_slot: int) -> datetime:
    """The first time the weekly slot comes round on or after the cohort's start date."""
    start_day = datetime.combine(cohort.start_date, time(), UTC)
    monday = start_day - timedelta(days=cohort.start_date.weekday())
    first = monday + start_slot * SLOT
    while first < start_day:
        first += timedelta(weeks=1)
    return first


def series(cohort: Cohort, start_slot: int, anchor: str) -> list[datetime]:
    """UTC start of each meeting, keeping the anchor zone's wall-clock time."""
    first = first_start(cohort, start_slot)
    if anchor == "UTC":
        return [first + timedelta(weeks=k) for k in range(cohort.meetings)]
    zone = zoneinfo.ZoneInfo(anchor)
    local = first.astimezone(zone).replace(tzinfo=None)
    return [
        (local + timedelta(weeks=k)).replace(tzinfo=zone).astimezone(UTC)
        for k in range(cohort.meetings)
    ]


class WeeklyFit:
    """Whether one person's weekly availability covers particular meetings. The weekly
    pattern is turned into UTC slots once per local week (a zone's offset can change
    between weeks), so checking many meetings costs little more than checking one."""

    def __init__(self, signup: Signup) -> None:
        self.zone = zoneinfo.ZoneInfo(signup.timezone) if signup.timezone else None
        self.sure, self.maybe = availability_of(signup)
        self.timezone = signup.timezone or ""
        self._weeks: dict[date, frozenset[int]] = {}

    def covers(self, start: datetime, minutes: int) -> bool:
        if self.zone is None:
            return False
        local_day = start.astimezone(self.zone).date()
        monday = local_day - timedelta(days=local_day.weekday())
        if monday not in self._weeks:
            available, if_needed = to_utc(self.timezone, self.sure, self.maybe, [monday])
            self._weeks[monday] = frozenset(available | if_needed)
        slots = self._weeks[monday]
        week_start = datetime.combine(start.date() - timedelta(days=start.weekday()), time(), UTC)
        first = int((start - week_start) / SLOT)
        return all((first + k) % 336 in slots for k in range(minutes // 30))


def can_make(signup: Signup, start: datetime, minutes: int) -> bool:
    """Whether the person's weekly availability covers this particular meeting."""
    return WeeklyFit(signup).covers(start, minutes)


def choose_anchor(
    cohort: Cohort, start_slot: int, members: list[Signup], facilitator: Signup | None
) -> str:
    zones = Counter(m.timezone for m in members if m.timezone)
    candidates = [facilitator.timezone] if facilitator and facilitator.timezone else []
    candidates += [zone for zone, _ in zones.most_common()]
    everyone = [WeeklyFit(s) for s in [*members, *([facilitator] if facilitator else [])]]
    for zone in dict.fromkeys(candidates):
        starts = series(cohort, start_slot, zone)
        if all(fit.covers(t, cohort.meeting_minutes) for fit in everyone for t in starts):
            return zone
    return "UTC"


async def create_meetings(session: AsyncSession, *, cohort: Cohort, group: Group) -> list[Meeting]:
    """The group's meetings (once: an existing series is left as it is)."""
    existing = list(
        await session.scalars(
            select(Meeting).where(Meeting.group_id == group.id).order_by(Meeting.number)
        )
    )
    if existing:
        return existing
    rows = (
        await session.execute(
            select(Signup, GroupMember.role)
            .join(GroupMember, GroupMember.signup_id == Signup.id)
            .where(GroupMember.group_id == group.id)
        )
    ).all()
    members = [s for s, role in rows if role == Role.PARTICIPANT]
    facilitator = next((s for s, role in rows if role == Role.FACILITATOR), None)
    anchor = choose_anchor(cohort, group.start_slot, members, facilitator)
    length = timedelta(minutes=cohort.meeting_minutes)
    meetings = [
        Meeting(
            group_id=group.id,
            number=number,
            starts_at=start,
            ends_at=start + length,
            anchor_timezone=anchor,
        )
        for number, start in enumerate(series(cohort, group.start_slot, anchor), start=1)
    ]
    session.add_all(meetings)
    await session.flush()
    await request_calendar_sync(session, meetings=meetings)
    return meetings


async def list_meetings(session: AsyncSession, *, group: Group) -> list[Meeting]:
    return list(
        await session.scalars(
            select(Meeting).where(Meeting.group_id == group.id).order_by(Meeting.number)
        )
    )


# -- private calendar feeds -------------------------------------------------------------


async def new_feed(session: AsyncSession, *, user: User) -> str:
    """A new feed address token; any earlier one stops working. Shown once."""
    for feed in await session.scalars(
        select(CalendarFeed).where(
            CalendarFeed.user_id == user.id, CalendarFeed.revoked_at.is_(None)
        )
    ):
        feed.revoked_at = utcnow()
    token = secrets.token_urlsafe(24)
    session.add(CalendarFeed(user_id=user.id, token_hash=token_hash(token)))
    await session.flush()
    return token


async def revoke_feeds(session: AsyncSession, *, user: User) -> int:
    count = 0
    for feed in await session.scalars(
        select(CalendarFeed).where(
            CalendarFeed.user_id == user.id, CalendarFeed.revoked_at.is_(None)
        )
    ):
        feed.revoked_at = utcnow()
        count += 1
    await session.flush()
    return count


async def has_feed(session: AsyncSession, *, user: User) -> bool:
    found = await session.scalar(
        select(CalendarFeed.id).where(
            CalendarFeed.user_id == user.id, CalendarFeed.revoked_at.is_(None)
        )
    )
    return found is not None


@dataclass(frozen=True)
class MeetingOf:
    meeting: Meeting
    group: Group
    cohort: Cohort


async def meetings_for_user(session: AsyncSession, *, user_id: int) -> list[MeetingOf]:
    """The meetings of the person's groups, and those they visit as a guest or lead as a
    stand-in (each once)."""
    mine = select(Signup.id).where(Signup.user_id == user_id)
    member_of = select(GroupMember.group_id).where(GroupMember.signup_id.in_(mine))
    visiting = select(MeetingGuest.meeting_id).where(MeetingGuest.signup_id.in_(mine))
    rows = await session.execute(
        select(Meeting, Group, Cohort)
        .join(Group, Group.id == Meeting.group_id)
        .join(Cohort, Cohort.id == Group.cohort_id)
        .where(
            Group.status == GroupStatus.ACTIVE,
            Meeting.group_id.in_(member_of)
            | Meeting.id.in_(visiting)
            | Meeting.substitute_signup_id.in_(mine),
        )
        .order_by(Meeting.starts_at)
    )
    return [MeetingOf(m, g, c) for m, g, c in rows.all()]


async def feed_calendar(session: AsyncSession, *, token: str, base_url: str, host: str) -> str:
    feed = await session.scalar(
        select(CalendarFeed).where(CalendarFeed.token_hash == token_hash(token))
    )
    if feed is None or feed.revoked_at is not None:
        raise NotFound(
            "This calendar address is not valid (any more); make a new one on your account page."
        )
    events = [
        IcsEvent(
            uid=f"meeting-{item.meeting.id}@{host}",
            sequence=item.meeting.sequence,
            start=item.meeting.starts_at,
            end=item.meeting.ends_at,
            summary=f"{item.cohort.name}: {item.group.name}, meeting {item.meeting.number}",
            description=describe_meeting(item.meeting, item.group, item.cohort, base_url=base_url),
            location=event_location(item.group),
            url=event_url(item.group, base_url=base_url),
            cancelled=item.meeting.status == "cancelled",
        )
        for item in await meetings_for_user(session, user_id=feed.user_id)
    ]
    return render_calendar(events, name="Lens meetings")


# -- how calendars show a meeting (feeds, attachments, Google Calendar) --------------------


def event_location(group: Group) -> str | None:
    """Where the group meets (lens/meetings/place.py), as an event's location: the place,
    else the call link (calendar apps make a link of a location that is one)."""
    return group.location or group.call_url


def event_url(group: Group, *, base_url: str) -> str:
    """An iCalendar event's URL: the call link, which is what people open at meeting
    time, else the group's page (the description always links that)."""
    return group.call_url or f"{base_url}/groups/{group.id}"


def describe_meeting(meeting: Meeting, group: Group, cohort: Cohort, *, base_url: str) -> str:
    """A meeting's description in calendars (plain text): which one, where, the group page."""
    lines = [f"Weekly meeting {meeting.number} of {cohort.meetings}."]
    if group.call_url:
        lines.append(f"Call link: {group.call_url}")
    if group.location:
        lines.append(f"Where: {group.location}")
    lines.append(f"Your group's page: {base_url}/groups/{group.id}")
    return "\n".join(lines)


# -- changes by a facilitator or admin ---------------------------------------------------


async def get_meeting(session: AsyncSession, *, group: Group, number: int) -> Meeting:
    meeting = await session.scalar(
        select(Meeting).where(Meeting.group_id == group.id, Meeting.number == number)
    )
    if meeting is None:
        raise NotFound(f"{group.name} has no meeting {number}.")
    return meeting


def _check_future(meeting: Meeting) -> None:
    if meeting.ends_at <= utcnow():
        raise Conflict(f"Meeting {meeting.number} is over; it cannot change.")


async def check_group_open(session: AsyncSession, *, cohort_id: int) -> None:
    """A finished cohort's groups are closed: everything stays readable (and attendance
    can still be corrected), but meetings, answers and the place no longer change."""
    cohort = await session.get(Cohort, cohort_id)
    if cohort is not None and cohort.status == CohortStatus.FINISHED:
        raise Conflict(
            f"{cohort.name} has finished, so its groups are closed: meetings, answers and "
            "the place no longer change."
        )


async def move_meetings(
    session: AsyncSession,
    *,
    group: Group,
    number: int,
    new_start: datetime,
    all_future: bool,
) -> list[Meeting]:
    """Move one meeting, or it and every later one by the same shift (kept at the
    series' wall-clock time in its anchor zone). Calendars see a higher SEQUENCE."""
    if new_start.tzinfo is None:
        raise Invalid("The new time needs a time zone.")
    if new_start <= utcnow():
        raise Invalid("Choose a time in the future.")
    await check_group_open(session, cohort_id=group.cohort_id)
    first = await get_meeting(session, group=group, number=number)
    _check_future(first)
    moved = [first]
    if all_future:
        moved = [m for m in await list_meetings(session, group=group) if m.number >= number]
    length = first.ends_at - first.starts_at
    zone = zoneinfo.ZoneInfo(first.anchor_timezone)
    shift_local = new_start.astimezone(zone).replace(tzinfo=None) - first.starts_at.astimezone(
        zone
    ).replace(tzinfo=None)
    changes = []
    for meeting in moved:
        if meeting.status == "cancelled" and meeting is not first:
            continue
        old_start = meeting.starts_at
        local = meeting.starts_at.astimezone(zone).replace(tzinfo=None) + shift_local
        meeting.starts_at = local.replace(tzinfo=zone).astimezone(UTC)
        meeting.ends_at = meeting.starts_at + length
        meeting.status = "scheduled"
        meeting.sequence += 1
        changes.append((meeting, old_start))
    await session.flush()
    if changes:
        # Reminders follow the new times; members hear of it; Discord's events move.
        moves = tuple(
            MeetingMove(meeting.id, old_start, meeting.starts_at, meeting.sequence)
            for meeting, old_start in changes
        )
        await publish(
            session, MeetingsMoved(cohort_id=group.cohort_id, group_id=group.id, moves=moves)
        )
    await request_calendar_sync(session, meetings=[meeting for meeting, _ in changes])
    return moved


async def cancel_meeting(session: AsyncSession, *, group: Group, number: int) -> Meeting:
    await check_group_open(session, cohort_id=group.cohort_id)
    meeting = await get_meeting(session, group=group, number=number)
    _check_future(meeting)
    if meeting.status != "cancelled":
        meeting.status = "cancelled"
        meeting.sequence += 1
        await session.flush()
        await publish(
            session,
            MeetingCancelled(
                cohort_id=group.cohort_id,
                group_id=group.id,
                meeting_id=meeting.id,
                starts_at=meeting.starts_at,
                sequence=meeting.sequence,
            ),
        )
        await request_calendar_sync(session, meetings=[meeting])
    return meeting


# -- members -----------------------------------------------------------------------------


async def member_user_ids(session: AsyncSession, *, group_id: int) -> list[int]:
    rows = await session.scalars(
        select(Signup.user_id)
        .join(GroupMember, GroupMember.signup_id == Signup.id)
        .where(GroupMember.group_id == group_id)
        .order_by(Signup.user_id)
    )
    return list(rows)


async def facilitator_user_ids(session: AsyncSession, *, group_id: int) -> list[int]:
    rows = await session.scalars(
        select(Signup.user_id)
        .join(GroupMember, GroupMember.signup_id == Signup.id)
        .where(GroupMember.group_id == group_id, GroupMember.role == Role.FACILITATOR)
        .order_by(Signup.user_id)
    )
    return list(rows)


async def guests_of(session: AsyncSession, *, meeting: Meeting) -> list[tuple[User, str]]:
    """Who visits this meeting from another group, with that group's name."""
    own_meeting = aliased(Meeting)
    rows = await session.execute(
        select(User, Group)
        .select_from(MeetingGuest)
        .join(Signup, Signup.id == MeetingGuest.signup_id)
        .join(User, User.id == Signup.user_id)
        .outerjoin(own_meeting, own_meeting.id == MeetingGuest.instead_of)
        .outerjoin(Group, Group.id == own_meeting.group_id)
        .where(MeetingGuest.meeting_id == meeting.id)
        .order_by(User.id)
    )
    return [(user, group.name if group else "another group") for user, group in rows.all()]


async def substitute_of(session: AsyncSession, *, meeting: Meeting) -> User | None:
    if meeting.substitute_signup_id is None:
        return None
    return await session.scalar(
        select(User)
        .join(Signup, Signup.user_id == User.id)
        .where(Signup.id == meeting.substitute_signup_id)
    )


# -- Google Calendar events (the work runs in jobs: lens/meetings/calendar.py) -----------


async def request_calendar_sync(session: AsyncSession, *, meetings: Sequence[Meeting]) -> int:
    """Queue bringing each meeting's Google Calendar event in line with the meeting.

    One job per meeting, not per group: a retry redoes only the event that failed (every
    call to Google sends e-mail to the attendees), and a move of one meeting touches one
    event. The key coalesces: changes while a job waits become that one job; a change
    while it runs queues one more, which then reads the newest state. Queued even when
    Google Calendar is not configured (the job then does nothing): the services do not
    know the settings, and a job row is cheap.
    """
    added = 0
    for meeting in meetings:
        job_id = await enqueue(
            session,
            kind=CALENDAR_SYNC_KIND,
            payload={"meeting_id": meeting.id},
            dedupe_key=coalesce(f"{CALENDAR_SYNC_KIND}:{meeting.id}"),
        )
        added += job_id is not None
    return added


async def request_group_calendar_sync(session: AsyncSession, *, group_id: int) -> int:
    """Queue a sync of the group's meetings still ahead (after someone joined it)."""
    now = utcnow()
    upcoming = await session.scalars(
        select(Meeting).where(
            Meeting.group_id == group_id, Meeting.status == "scheduled", Meeting.ends_at > now
        )
    )
    return await request_calendar_sync(session, meetings=list(upcoming))


# -- RSVPs -------------------------------------------------------------------------------

# What a person can answer on the site, in the order the buttons show them.
SITE_ANSWERS = (RsvpStatus.ATTENDING, RsvpStatus.NOT_ATTENDING, RsvpStatus.TENTATIVE)
ANSWER_LABELS = {
    RsvpStatus.ATTENDING: "Attending",
    RsvpStatus.NOT_ATTENDING: "Not attending",
    RsvpStatus.TENTATIVE: "Maybe",
    RsvpStatus.PENDING: "No answer",
}


def open_for_answers(meeting: Meeting, *, now: datetime | None = None) -> bool:
    """Scheduled and not over: the meetings people can still say they come to."""
    return meeting.status == "scheduled" and meeting.ends_at > (now or utcnow())


async def is_member(session: AsyncSession, *, group_id: int, user_id: int) -> bool:
    """In the group as a participant or as its facilitator."""
    found = await session.scalar(
        select(GroupMember.group_id)
        .join(Signup, Signup.id == GroupMember.signup_id)
        .where(GroupMember.group_id == group_id, Signup.user_id == user_id)
    )
    return found is not None


async def check_can_answer(session: AsyncSession, *, group_id: int, user: User) -> None:
    """Only people in the group answer for its meetings (an admin outside it does not)."""
    if not await is_member(session, group_id=group_id, user_id=user.id):
        raise Forbidden("Only the group's members and its facilitator answer for its meetings.")


async def set_rsvp(session: AsyncSession, *, meeting: Meeting, user: User, status: str) -> Rsvp:
    """Record a member's answer for a meeting, given on the site.

    Not written back to Google Calendar: the invitation there keeps whatever the person
    answered in their calendar. The RSVP sync never overwrites a site answer with
    Google's (see lens/meetings/calendar.py), so the latest answer given here stays.
    """
    await check_can_answer(session, group_id=meeting.group_id, user=user)
    if status not in SITE_ANSWERS:
        raise Invalid(
            f"{status!r} is not an answer: choose attending, not_attending or tentative (maybe)."
            if status
            else "Choose an answer: attending, not attending or maybe."
        )
    if meeting.status == "cancelled":
        raise Conflict(f"Meeting {meeting.number} is cancelled; there is nothing to answer.")
    group = await session.get(Group, meeting.group_id)
    if group is not None:
        await check_group_open(session, cohort_id=group.cohort_id)
    if not open_for_answers(meeting):
        raise Conflict(f"Meeting {meeting.number} is over; answers for it can no longer change.")
    now = utcnow()
    # An upsert, so a double click (two requests at once) cannot fail on the unique key.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(Rsvp).values(
        meeting_id=meeting.id, user_id=user.id, status=status, source="site", updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[Rsvp.meeting_id, Rsvp.user_id],
        set_={"status": status, "source": "site", "updated_at": now},
    )
    await session.execute(stmt)
    rsvp = await session.scalar(
        select(Rsvp)
        .where(Rsvp.meeting_id == meeting.id, Rsvp.user_id == user.id)
        .execution_options(populate_existing=True)
    )
    assert rsvp is not None
    return rsvp


async def rsvps_for_group(session: AsyncSession, *, group: Group) -> dict[int, dict[int, str]]:
    """meeting id -> {user id -> answer} for the group's meetings (people who have never
    answered are missing: read them as pending)."""
    rows = await session.execute(
        select(Rsvp.meeting_id, Rsvp.user_id, Rsvp.status)
        .join(Meeting, Meeting.id == Rsvp.meeting_id)
        .where(Meeting.group_id == group.id)
    )
    out: dict[int, dict[int, str]] = {}
    for meeting_id, user_id, status in rows.all():
        out.setdefault(meeting_id, {})[user_id] = status
    return out


@dataclass(frozen=True)
class AnswerCount:
    status: str
    label: str
    names: list[str]


def answer_counts(answers: dict[int, str], people: Sequence[tuple[int, str]]) -> list[AnswerCount]:
    """Who answered what, for the facilitator: each answer (no answer last) with names."""
    by_status: dict[str, list[str]] = {status: [] for status in (*SITE_ANSWERS, "pending")}
    for user_id, name in people:
        status = answers.get(user_id, RsvpStatus.PENDING)
        by_status.get(status, by_status[RsvpStatus.PENDING]).append(name)
    return [AnswerCount(s, ANSWER_LABELS[s], names) for s, names in by_status.items()]
