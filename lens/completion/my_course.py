"""A learner's home: where they are in each cohort (enrolled and waiting for groups, left
without a group, in a group, finished) and, in a group, the next meeting (when in their
zone, where, their answer), what to read before each meeting with their progress, their
attendance so far, and how far they are to completing the course."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.visitors import user_actor
from lens.cohorts.models import (
    Cohort,
    CohortStatus,
    Group,
    GroupMember,
    GroupStatus,
    Role,
    Signup,
    SignupStatus,
)
from lens.completion.models import Certificate
from lens.completion.service import Standing, standings
from lens.content.parsed import ContentSet
from lens.courses.service import CourseView, UnitView, course_view
from lens.db.base import utcnow
from lens.meetings.models import Attendance, Meeting, MeetingGuest
from lens.meetings.service import rsvps_for_group
from lens.users.models import User

# What each state is called on the page (the signup's status, and the cohort's).
ENROLLED, WAITING, GROUPED, FINISHED, DEFERRED = (
    "enrolled",
    "waiting",
    "grouped",
    "finished",
    "deferred",
)


@dataclass(frozen=True)
class MeetingLine:
    meeting: Meeting
    local: datetime  # in the learner's zone
    before: UnitView | None  # the modules to read before it
    answer: str  # their RSVP
    attendance: str | None  # as recorded, once held
    visiting: str | None = None  # they visit another group's meeting instead

    @property
    def held(self) -> bool:
        return self.meeting.status == "scheduled" and self.meeting.starts_at <= utcnow()


@dataclass
class CohortPlace:
    cohort: Cohort
    signup: Signup
    state: str
    group: Group | None = None
    facilitator: str | None = None
    meetings: list[MeetingLine] = field(default_factory=list)
    view: CourseView | None = None
    standing: Standing | None = None
    led: list[Group] = field(default_factory=list)  # a facilitator's groups
    certificate: Certificate | None = None
    standing_in: list[tuple[Meeting, Group, datetime]] = field(default_factory=list)

    @property
    def next_meeting(self) -> MeetingLine | None:
        return next(
            (
                m
                for m in self.meetings
                if m.meeting.status == "scheduled" and m.meeting.ends_at > utcnow()
            ),
            None,
        )

    @property
    def attended(self) -> int:
        return sum(1 for m in self.meetings if m.attendance in ("present", "late"))

    @property
    def recorded(self) -> int:
        return sum(1 for m in self.meetings if m.attendance is not None)


def _state(signup: Signup, cohort: Cohort) -> str | None:
    if signup.status == SignupStatus.DEFERRED:
        return DEFERRED
    if signup.status in (SignupStatus.WITHDRAWN, SignupStatus.DRAFT):
        return None
    if signup.role == Role.FACILITATOR and cohort.status in (
        CohortStatus.RUNNING,
        CohortStatus.FINISHED,
    ):
        # Leading a group, standing in at some meetings, or ready to.
        return FINISHED if cohort.status == CohortStatus.FINISHED else GROUPED
    if cohort.status == CohortStatus.FINISHED:
        return FINISHED if signup.status == SignupStatus.GROUPED else None
    if signup.status == SignupStatus.GROUPED:
        return GROUPED
    if signup.status == SignupStatus.UNPLACED or cohort.status == CohortStatus.RUNNING:
        return WAITING
    return ENROLLED


async def places(
    session: AsyncSession, *, user: User, content: ContentSet | None, full: bool = True
) -> list[CohortPlace]:
    """Each cohort the person is in (newest first), with what the page shows of it; not
    `full`: the group and the next meeting only (the landing page's summary)."""
    rows = (
        await session.execute(
            select(Signup, Cohort)
            .join(Cohort, Cohort.id == Signup.cohort_id)
            .where(Signup.user_id == user.id)
            .order_by(Cohort.start_date.desc(), Cohort.id.desc())
        )
    ).all()
    out = []
    for signup, cohort in rows:
        state = _state(signup, cohort)
        if state is None:
            continue
        place = CohortPlace(cohort, signup, state)
        if state in (GROUPED, FINISHED):
            await _fill(session, place, user, content, full=full)
        out.append(place)
    return out


async def _fill(
    session: AsyncSession,
    place: CohortPlace,
    user: User,
    content: ContentSet | None,
    *,
    full: bool,
) -> None:
    groups = list(
        await session.scalars(
            select(Group)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(
                GroupMember.signup_id == place.signup.id,
                Group.status.in_([GroupStatus.ACTIVE, GroupStatus.DISBANDED]),
            )
            .order_by(Group.status, Group.number)
        )
    )
    place.certificate = await session.scalar(
        select(Certificate).where(
            Certificate.signup_id == place.signup.id, Certificate.revoked_at.is_(None)
        )
    )
    if place.signup.role == Role.FACILITATOR:
        place.led = groups
        zone = zoneinfo.ZoneInfo(user.timezone or place.signup.timezone or "UTC")
        rows = await session.execute(
            select(Meeting, Group)
            .join(Group, Group.id == Meeting.group_id)
            .where(Meeting.substitute_signup_id == place.signup.id, Meeting.status == "scheduled")
            .order_by(Meeting.starts_at)
        )
        place.standing_in = [(m, g, m.starts_at.astimezone(zone)) for m, g in rows.all()]
        return
    if not groups:
        return
    group = place.group = groups[0]
    lead = await session.scalar(
        select(User)
        .join(Signup, Signup.user_id == User.id)
        .join(GroupMember, GroupMember.signup_id == Signup.id)
        .where(GroupMember.group_id == group.id, GroupMember.role == Role.FACILITATOR)
    )
    place.facilitator = lead.display_name if lead else None
    zone = zoneinfo.ZoneInfo(user.timezone or place.signup.timezone or "UTC")
    if not full:
        upcoming = await session.scalar(
            select(Meeting)
            .where(
                Meeting.group_id == group.id,
                Meeting.status == "scheduled",
                Meeting.ends_at > utcnow(),
            )
            .order_by(Meeting.starts_at)
            .limit(1)
        )
        if upcoming is not None:
            place.meetings.append(
                MeetingLine(upcoming, upcoming.starts_at.astimezone(zone), None, "pending", None)
            )
        return
    course = content.courses.get(place.cohort.course_slug) if content else None
    if content is not None and course is not None:
        place.view = await course_view(
            session, content=content, course=course, actor=user_actor(user.id)
        )
    units = {u.meeting: u for u in place.view.units} if place.view else {}
    meetings = list(
        await session.scalars(
            select(Meeting).where(Meeting.group_id == group.id).order_by(Meeting.number)
        )
    )
    answers = await rsvps_for_group(session, group=group)
    marks = dict(
        (
            await session.execute(
                select(Attendance.meeting_id, Attendance.status).where(
                    Attendance.signup_id == place.signup.id
                )
            )
        ).all()
    )
    away = dict(
        (
            await session.execute(
                select(MeetingGuest.instead_of, Group.number)
                .join(Meeting, Meeting.id == MeetingGuest.meeting_id)
                .join(Group, Group.id == Meeting.group_id)
                .where(MeetingGuest.signup_id == place.signup.id)
            )
        ).all()
    )
    visited = dict(
        (
            await session.execute(
                select(MeetingGuest.instead_of, Attendance.status)
                .join(
                    Attendance,
                    (Attendance.meeting_id == MeetingGuest.meeting_id)
                    & (Attendance.signup_id == MeetingGuest.signup_id),
                )
                .where(MeetingGuest.signup_id == place.signup.id)
            )
        ).all()
    )
    for m in meetings:
        place.meetings.append(
            MeetingLine(
                meeting=m,
                local=m.starts_at.astimezone(zone),
                before=units.get(m.number),
                answer=answers.get(m.id, {}).get(user.id, "pending"),
                attendance=marks.get(m.id) or visited.get(m.id),
                visiting=f"Group {away[m.id]}" if m.id in away else None,
            )
        )
    _, mine = await standings(
        session, cohort=place.cohort, content=content, signup_ids=[place.signup.id]
    )
    place.standing = mine[0] if mine else None
