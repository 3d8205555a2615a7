"""Late joiners: once a cohort runs, someone enrolled but unplaced can join an active
group with room whose every remaining meeting they can make."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.availability import meeting_weeks, to_utc
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
from lens.cohorts.service import SignupRow, availability_of
from lens.db.base import utcnow
from lens.errors import Conflict
from lens.events import publish
from lens.meetings.models import Meeting
from lens.meetings.service import WeeklyFit, request_group_calendar_sync
from lens.scheduling import algorithm as alg
from lens.scheduling.events import MemberJoined
from lens.scheduling.service import GROUPABLE, groups_of, lock_cohort, members_of
from lens.users.models import User


@dataclass(frozen=True)
class Opening:
    group: Group
    participants: int
    tier: alg.Tier
    local: str  # the meeting time in the joiner's zone


async def openings(
    session: AsyncSession, *, cohort: Cohort, signup: Signup, grouped: bool = False
) -> list[Opening]:
    """Active groups with room whose every remaining meeting this person can make, the
    best fit first (meetings are checked one by one: a series keeps its zone's
    wall-clock time, so its UTC time can move at a DST change). `grouped`: for someone
    in a group already, who may switch (their own group is among those returned)."""
    allowed = (*GROUPABLE, SignupStatus.GROUPED) if grouped else GROUPABLE
    if (
        cohort.status != CohortStatus.RUNNING
        or signup.role != Role.PARTICIPANT
        or signup.status not in allowed
        or not signup.timezone
    ):
        return []
    weeks = meeting_weeks(cohort.start_date, cohort.meetings + 1)
    sure, maybe = availability_of(signup)
    person = alg.Person(signup.id, *to_utc(signup.timezone, sure, maybe, weeks))
    groups = await groups_of(session, cohort, GroupStatus.ACTIVE)
    members = await members_of(session, groups)
    k = cohort.meeting_minutes // alg.SLOT_MINUTES
    counts = {g.id: sum(1 for m in members[g.id] if m.role == Role.PARTICIPANT) for g in groups}
    with_room = [g for g in groups if counts[g.id] < cohort.max_group_size]
    ahead: dict[int, list[Meeting]] = {g.id: [] for g in with_room}
    if ahead:
        for meeting in await session.scalars(
            select(Meeting)
            .where(
                Meeting.group_id.in_(list(ahead)),
                Meeting.ends_at > utcnow(),
                Meeting.status != "cancelled",
            )
            .order_by(Meeting.starts_at)
        ):
            ahead[meeting.group_id].append(meeting)
    fit = WeeklyFit(signup)
    out = []
    for group in with_room:
        mine = ahead[group.id]
        if not mine or not all(fit.covers(m.starts_at, cohort.meeting_minutes) for m in mine):
            continue
        tier = alg.can_attend(person, group.start_slot, k) or alg.Tier.IF_NEEDED
        local = mine[0].starts_at.astimezone(zoneinfo.ZoneInfo(signup.timezone))
        out.append(Opening(group, counts[group.id], tier, f"{local:%A %H:%M}"))
    out.sort(key=lambda o: (-o.tier, o.participants, o.group.number))
    return out


async def join_group(
    session: AsyncSession, *, cohort: Cohort, signup: Signup, group_id: int
) -> Group:
    if signup.status not in GROUPABLE:
        raise Conflict(
            "You are already in a group."
            if signup.status == SignupStatus.GROUPED
            else "Enroll again before joining a group."
        )
    # The cohort's lock, as every other change of its groups takes (admins' changes,
    # switches), then the group's: two people cannot both take the last seat.
    await lock_cohort(session, cohort.id)
    locked = await session.get(Group, group_id, with_for_update=True, populate_existing=True)
    choices = {o.group.id: o for o in await openings(session, cohort=cohort, signup=signup)}
    if locked is None or group_id not in choices:
        raise Conflict("That group is full or meets at a time you cannot make; pick another.")
    session.add(GroupMember(group_id=locked.id, signup_id=signup.id, role=Role.PARTICIPANT))
    signup.status, signup.unplaced_reason = SignupStatus.GROUPED, None
    await session.flush()
    # Their invitations to the calendar events of the meetings ahead.
    await request_group_calendar_sync(session, group_id=locked.id)
    await publish(
        session, MemberJoined(cohort_id=cohort.id, group_id=locked.id, user_id=signup.user_id)
    )
    return locked


async def group_of(
    session: AsyncSession, *, signup: Signup
) -> tuple[Group, list[SignupRow]] | None:
    """The active group a person is in, with everyone in it."""
    group = await session.scalar(
        select(Group)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.signup_id == signup.id, Group.status == GroupStatus.ACTIVE)
    )
    if group is None:
        return None
    rows = (
        await session.execute(
            select(Signup, User)
            .join(GroupMember, GroupMember.signup_id == Signup.id)
            .join(User, User.id == Signup.user_id)
            .where(GroupMember.group_id == group.id)
            .order_by(Signup.role.desc(), User.id)
        )
    ).all()
    return group, [SignupRow(s, u) for s, u in rows]
