"""What a participant of a running cohort does for themselves: switch to a group at a
time that suits them better (at once, or once its facilitator or an admin agrees, as the
cohort says), visit another group's meeting once in a week they cannot make their own,
defer to a later cohort of the same course, or withdraw. Each goes through the same
checks and side effects as an admin's change (lens/scheduling/changes.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts import audit
from lens.cohorts.events import SignupConfirmed
from lens.cohorts.models import (
    Cohort,
    CohortStatus,
    Group,
    GroupMember,
    GroupStatus,
    Role,
    Signup,
    SignupStatus,
    SwitchRequest,
)
from lens.db.base import utcnow
from lens.errors import Conflict, Forbidden, NotFound
from lens.events import publish
from lens.meetings.models import Meeting, MeetingGuest, Rsvp, RsvpStatus
from lens.meetings.service import (
    WeeklyFit,
    facilitator_user_ids,
    request_calendar_sync,
    set_rsvp,
)
from lens.scheduling import changes
from lens.scheduling.events import GuestVisit, SwitchRefused, SwitchRequested
from lens.scheduling.joiners import Opening, openings
from lens.scheduling.service import lock_cohort
from lens.users.models import User

GUESTS_PER_MEETING = 2  # beyond its members: a visit should not swamp a group


def _running(cohort: Cohort) -> None:
    if cohort.status != CohortStatus.RUNNING:
        raise Conflict(f"{cohort.name} is not running; there are no groups to change.")


async def own_group(session: AsyncSession, signup: Signup) -> Group | None:
    groups = await changes.groups_of_signup(session, signup.id)
    return next((g for g, role in groups if role == Role.PARTICIPANT), None)


# -- switching ----------------------------------------------------------------------------


async def switch_options(session: AsyncSession, *, cohort: Cohort, signup: Signup) -> list[Opening]:
    """Other groups with room whose every meeting ahead this person can make."""
    mine = await own_group(session, signup)
    if mine is None:
        return []
    found = await openings(session, cohort=cohort, signup=signup, grouped=True)
    return [o for o in found if o.group.id != mine.id]


async def pending_switch(session: AsyncSession, *, signup: Signup) -> SwitchRequest | None:
    return await session.scalar(
        select(SwitchRequest).where(
            SwitchRequest.signup_id == signup.id, SwitchRequest.status == "pending"
        )
    )


async def switch(
    session: AsyncSession, *, cohort: Cohort, signup: Signup, user: User, group_id: int
) -> str:
    """Switch now, or ask (cohort setting). Returns "switched" or "requested"."""
    cohort = await lock_cohort(session, cohort.id)
    _running(cohort)
    mine = await own_group(session, signup)
    if mine is None:
        raise Conflict("You are not in a group; join one from the list instead.")
    choices = {o.group.id for o in await switch_options(session, cohort=cohort, signup=signup)}
    if group_id not in choices:
        raise Conflict("That group is full or meets at a time you cannot make; pick another.")
    if cohort.switch_needs_approval:
        if await pending_switch(session, signup=signup) is not None:
            raise Conflict(
                "You already asked to switch; wait for the answer, or take that request back."
            )
        request = SwitchRequest(signup_id=signup.id, from_group_id=mine.id, to_group_id=group_id)
        session.add(request)
        await session.flush()
        await publish(
            session,
            SwitchRequested(
                cohort_id=cohort.id, group_id=group_id, request_id=request.id, user_id=user.id
            ),
        )
        return "requested"
    await _move(session, cohort, signup, group_id, actor=user)
    return "switched"


async def _move(
    session: AsyncSession, cohort: Cohort, signup: Signup, group_id: int, *, actor: User
) -> None:
    ask = changes.Ask(changes.MOVE, signup.id, group_id)
    planned = await changes.plan(session, cohort=cohort, ask=ask)
    if planned.problems:
        raise Conflict(planned.problems[0])
    await changes.apply(
        session,
        cohort_id=cohort.id,
        ask=ask,
        token=planned.token,
        actor=actor,
        as_action="member.switch",
    )


async def withdraw_switch(session: AsyncSession, *, signup: Signup) -> None:
    # Compare and set: a request decided a moment ago stays decided.
    taken = await session.execute(
        update(SwitchRequest)
        .where(SwitchRequest.signup_id == signup.id, SwitchRequest.status == "pending")
        .values(status="withdrawn", decided_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("There is no request to take back (it may have been answered already).")


@dataclass(frozen=True)
class PendingSwitch:
    request: SwitchRequest
    user: User
    from_group: Group


async def switch_requests_for(session: AsyncSession, *, group: Group) -> list[PendingSwitch]:
    rows = await session.execute(
        select(SwitchRequest, User, Group)
        .join(Signup, Signup.id == SwitchRequest.signup_id)
        .join(User, User.id == Signup.user_id)
        .join(Group, Group.id == SwitchRequest.from_group_id)
        .where(SwitchRequest.to_group_id == group.id, SwitchRequest.status == "pending")
        .order_by(SwitchRequest.id)
    )
    return [PendingSwitch(r, u, g) for r, u, g in rows.all()]


async def decide_switch(
    session: AsyncSession, *, request_id: int, approve: bool, by: User
) -> SwitchRequest:
    """The group's facilitator (the group asked to join) or an admin says yes or no."""
    request = await session.get(SwitchRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFound("There is no such request.")
    target = await session.get(Group, request.to_group_id)
    assert target is not None
    leads = by.id in await facilitator_user_ids(session, group_id=target.id)
    if not (by.is_admin or leads):
        raise Forbidden("Only the facilitator of the group asked to join, or an admin, decides.")
    if request.status != "pending":
        raise Conflict(f"This request was {request.status} already.")
    signup = await session.get(Signup, request.signup_id)
    cohort = await session.get(Cohort, target.cohort_id)
    assert signup is not None and cohort is not None
    if approve:
        await _move(session, cohort, signup, target.id, actor=by)
    request.status = "approved" if approve else "refused"
    request.decided_by, request.decided_at = by.id, utcnow()
    await session.flush()
    if not approve:  # a yes is told as the move itself (MembershipChanged)
        await publish(
            session,
            SwitchRefused(
                cohort_id=cohort.id,
                group_id=target.id,
                request_id=request.id,
                user_id=signup.user_id,
            ),
        )
    return request


# -- a guest visit ------------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    meeting: Meeting  # the other group's meeting
    group: Group
    local: str  # its time in the visitor's zone
    guests: int


async def own_meetings_ahead(session: AsyncSession, signup: Signup) -> list[Meeting]:
    mine = await own_group(session, signup)
    return await changes.meetings_ahead(session, mine) if mine else []


async def visit_options(
    session: AsyncSession, *, cohort: Cohort, signup: Signup, meeting_number: int
) -> list[Visit]:
    """Other groups' meetings in the same week as the person's own meeting
    `meeting_number`, at a time they can make, with room for a guest."""
    own = {m.number: m for m in await own_meetings_ahead(session, signup)}
    instead = own.get(meeting_number)
    if instead is None or cohort.status != CohortStatus.RUNNING:
        return []
    week = timedelta(days=4)
    rows = await session.execute(
        select(Meeting, Group)
        .join(Group, Group.id == Meeting.group_id)
        .where(
            Group.cohort_id == cohort.id,
            Group.status == GroupStatus.ACTIVE,
            Group.id != instead.group_id,
            Meeting.status == "scheduled",
            Meeting.starts_at > utcnow(),
            Meeting.starts_at > instead.starts_at - week,
            Meeting.starts_at < instead.starts_at + week,
        )
        .order_by(Meeting.starts_at)
    )
    counts = dict(
        (
            await session.execute(
                select(MeetingGuest.meeting_id, func.count()).group_by(MeetingGuest.meeting_id)
            )
        ).all()
    )
    already = set(
        await session.scalars(
            select(MeetingGuest.meeting_id).where(MeetingGuest.signup_id == signup.id)
        )
    )
    zone = ZoneInfo(signup.timezone or "UTC")
    fit = WeeklyFit(signup)
    return [
        Visit(m, g, f"{m.starts_at.astimezone(zone):%A %d %B, %H:%M}", counts.get(m.id, 0))
        for m, g in rows.all()
        if counts.get(m.id, 0) < GUESTS_PER_MEETING
        and m.id not in already
        and fit.covers(m.starts_at, cohort.meeting_minutes)
    ]


async def visits_of(
    session: AsyncSession, *, signup: Signup
) -> list[tuple[MeetingGuest, Meeting, Group]]:
    rows = await session.execute(
        select(MeetingGuest, Meeting, Group)
        .join(Meeting, Meeting.id == MeetingGuest.meeting_id)
        .join(Group, Group.id == Meeting.group_id)
        .where(MeetingGuest.signup_id == signup.id, Meeting.ends_at > utcnow())
        .order_by(Meeting.starts_at)
    )
    return [(v, m, g) for v, m, g in rows.all()]


async def visit(
    session: AsyncSession,
    *,
    cohort: Cohort,
    signup: Signup,
    user: User,
    meeting_number: int,
    meeting_id: int,
) -> MeetingGuest:
    cohort = await lock_cohort(session, cohort.id)
    _running(cohort)
    options = {
        v.meeting.id: v
        for v in await visit_options(
            session, cohort=cohort, signup=signup, meeting_number=meeting_number
        )
    }
    chosen = options.get(meeting_id)
    if chosen is None:
        raise Conflict(
            "That meeting is not open to you as a guest (full, at a time you cannot make, or "
            "not in the same week); pick one from the list."
        )
    own = {m.number: m for m in await own_meetings_ahead(session, signup)}[meeting_number]
    if await session.scalar(
        select(MeetingGuest.id).where(
            MeetingGuest.signup_id == signup.id, MeetingGuest.instead_of == own.id
        )
    ):
        raise Conflict(
            f"You already visit another group instead of meeting {own.number}; cancel that first."
        )
    guest = MeetingGuest(meeting_id=meeting_id, signup_id=signup.id, instead_of=own.id)
    session.add(guest)
    await session.flush()
    await set_rsvp(session, meeting=own, user=user, status=RsvpStatus.NOT_ATTENDING)
    await request_calendar_sync(session, meetings=[chosen.meeting])
    entry = await audit.record(
        session,
        cohort_id=cohort.id,
        actor=user,
        action="member.guest",
        subject_user_id=user.id,
        group_ids=[chosen.group.id, own.group_id],
        details={
            "person": user.display_name,
            "group": chosen.group.name,
            "meeting": chosen.meeting.number,
        },
    )
    await publish(
        session,
        GuestVisit(
            cohort_id=cohort.id,
            group_id=chosen.group.id,
            meeting_id=chosen.meeting.id,
            user_id=user.id,
            change_id=entry.id,
            cancelled=False,
        ),
    )
    return guest


async def cancel_visit(session: AsyncSession, *, signup: Signup, user: User, guest_id: int) -> None:
    guest = await session.get(MeetingGuest, guest_id)
    if guest is None or guest.signup_id != signup.id:
        raise NotFound("There is no such visit.")
    meeting = await session.get(Meeting, guest.meeting_id)
    assert meeting is not None
    if meeting.ends_at <= utcnow():
        raise Conflict("That meeting is over; the visit stays on record.")
    await session.execute(delete(MeetingGuest).where(MeetingGuest.id == guest.id))
    if guest.instead_of is not None:
        # The "not attending" the visit gave their own meeting goes back to no answer.
        await session.execute(
            delete(Rsvp).where(
                Rsvp.meeting_id == guest.instead_of,
                Rsvp.user_id == user.id,
                Rsvp.status == RsvpStatus.NOT_ATTENDING,
            )
        )
    await request_calendar_sync(session, meetings=[meeting])
    group = await session.get(Group, meeting.group_id)
    assert group is not None
    entry = await audit.record(
        session,
        cohort_id=group.cohort_id,
        actor=user,
        action="member.guest.cancel",
        subject_user_id=user.id,
        group_ids=[group.id],
        details={"person": user.display_name, "group": group.name, "meeting": meeting.number},
    )
    await publish(
        session,
        GuestVisit(
            cohort_id=group.cohort_id,
            group_id=group.id,
            meeting_id=meeting.id,
            user_id=user.id,
            change_id=entry.id,
            cancelled=True,
        ),
    )


# -- deferring and withdrawing -----------------------------------------------------------


async def later_cohorts(session: AsyncSession, *, cohort: Cohort) -> list[Cohort]:
    """Cohorts of the same course starting later and taking signups."""
    return list(
        await session.scalars(
            select(Cohort)
            .where(
                Cohort.course_slug == cohort.course_slug,
                Cohort.id != cohort.id,
                Cohort.status == CohortStatus.OPEN,
                Cohort.start_date > cohort.start_date,
            )
            .order_by(Cohort.start_date)
        )
    )


async def _leave(
    session: AsyncSession, cohort: Cohort, signup: Signup, user: User, action: str
) -> None:
    """Out of their group (if any), through the change machinery: told, logged."""
    if await own_group(session, signup) is None:
        return
    ask = changes.Ask(changes.REMOVE, signup.id)
    planned = await changes.plan(session, cohort=cohort, ask=ask)
    await changes.apply(
        session, cohort_id=cohort.id, ask=ask, token=planned.token, actor=user, as_action=action
    )


async def defer(
    session: AsyncSession, *, cohort: Cohort, signup: Signup, user: User, to_cohort_id: int
) -> Signup:
    """Move to a later cohort of the same course, keeping role, zone and availability."""
    if signup.status in (SignupStatus.WITHDRAWN, SignupStatus.DEFERRED, SignupStatus.DRAFT):
        raise Conflict("Only someone enrolled in this cohort can defer.")
    if cohort.status == CohortStatus.FINISHED:
        raise Conflict(f"{cohort.name} is finished; enroll in a later cohort instead.")
    led = [
        g
        for g, role in await changes.groups_of_signup(session, signup.id)
        if role == Role.FACILITATOR
    ]
    if led:
        raise Conflict(
            f"You lead {', '.join(g.name for g in led)}; ask the course team to hand it to "
            "another facilitator first."
        )
    target = next(
        (c for c in await later_cohorts(session, cohort=cohort) if c.id == to_cohort_id), None
    )
    if target is None:
        raise Conflict(
            "That cohort is not a later one of this course taking signups; pick one from the list."
        )
    existing = await session.scalar(
        select(Signup).where(Signup.cohort_id == target.id, Signup.user_id == user.id)
    )
    if existing is not None and existing.status not in (SignupStatus.DRAFT, SignupStatus.WITHDRAWN):
        raise Conflict(f"You are already enrolled in {target.name}.")
    if cohort.status == CohortStatus.RUNNING:
        await lock_cohort(session, cohort.id)
        await _leave(session, cohort, signup, user, "member.defer")
    else:  # out of any grouping preview, so approval cannot put them in a group
        drafts = select(Group.id).where(
            Group.cohort_id == cohort.id, Group.status == GroupStatus.DRAFT
        )
        await session.execute(
            delete(GroupMember).where(
                GroupMember.signup_id == signup.id, GroupMember.group_id.in_(drafts)
            )
        )
    new = existing or Signup(cohort_id=target.id, user_id=user.id)
    new.role, new.timezone = signup.role, signup.timezone
    new.availability = dict(signup.availability or {})
    new.max_groups, new.approved_at = signup.max_groups, signup.approved_at
    new.status, new.enrolled_at, new.withdrawn_at = SignupStatus.ENROLLED, utcnow(), None
    if existing is None:
        session.add(new)
    signup.status, signup.deferred_to, signup.withdrawn_at = (
        SignupStatus.DEFERRED,
        target.id,
        utcnow(),
    )
    await session.flush()
    await audit.record(
        session,
        cohort_id=cohort.id,
        actor=user,
        action="member.deferred",
        subject_user_id=user.id,
        details={"person": user.display_name, "to": target.name},
    )
    await publish(session, SignupConfirmed(signup_id=new.id, user_id=user.id, cohort_id=target.id))
    return new


async def withdraw_running(
    session: AsyncSession, *, cohort: Cohort, signup: Signup, user: User
) -> None:
    """Leave a running cohort: the seat is freed and the facilitator told."""
    _running(cohort)
    if signup.status in (SignupStatus.WITHDRAWN, SignupStatus.DEFERRED):
        raise Conflict("You have already left this cohort.")
    if signup.role != Role.PARTICIPANT:
        raise Conflict("Facilitators: ask the course team to hand your group to someone else.")
    await lock_cohort(session, cohort.id)
    await _leave(session, cohort, signup, user, "member.withdraw")
    signup.status, signup.withdrawn_at = SignupStatus.WITHDRAWN, utcnow()
    await session.flush()
