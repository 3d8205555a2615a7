"""Cohorts and enrollment: create and list cohorts, the signup a person builds step by
step, availability, withdrawal, facilitator approval."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.availability import check_slots, longest_run
from lens.cohorts.events import CohortFinished, SignupConfirmed
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
from lens.db.base import utcnow
from lens.errors import Conflict, Invalid, NotFound
from lens.events import publish
from lens.users.models import User
from lens.users.service import check_timezone

MEETING_MINUTES = (60, 90, 120)
MAX_MEETINGS = 52
MAX_FACILITATOR_GROUPS = 4
# Why a signup is unplaced (Signup.unplaced_reason), in words for them and the admin.
REASON_TEXT = {
    "no_availability": "gave no stretch of time as long as a meeting",
    "no_shared_slot": "no time they can make is shared by enough other participants",
    "no_facilitator": "no facilitator can meet at any time that works for them",
    "facilitator_capacity": "the facilitators who could meet then are all leading other groups",
    "groups_full": "the groups at their times are full, and too few share a time for a new one",
    "facilitator_not_needed": "every group already has a facilitator",
    "not_approved": "facilitator not approved yet",
    "moved_by_hand": "moved out of the groups by hand",
    "removed": "taken out of their group by an admin",
    "replaced": "another facilitator took over their group",
    "switched_out": "left their group",
}


@dataclass(frozen=True)
class CohortFields:
    course_slug: str
    name: str
    start_date: date
    meetings: int
    meeting_minutes: int
    min_group_size: int = 4
    max_group_size: int = 8
    needs_facilitator: bool = True
    enrollment_deadline: datetime | None = None
    switch_needs_approval: bool = False
    completion_meetings: int | None = None  # None: the course's rule
    completion_modules: str | None = None  # required, all, none; None: the course's


def check_cohort(fields: CohortFields, *, courses: set[str] | None = None) -> list[str]:
    """Every problem with the fields, each saying what to fix (empty when valid)."""
    problems = []
    if courses is not None and fields.course_slug not in courses:
        known = ", ".join(sorted(courses)) or "none loaded"
        problems.append(f"There is no course {fields.course_slug!r} (courses: {known}).")
    if not fields.name.strip():
        problems.append("Give the cohort a name, e.g. 'Spring 2027'.")
    elif len(fields.name) > 200:
        problems.append("The name is too long: 200 characters at most.")
    if not 1 <= fields.meetings <= MAX_MEETINGS:
        problems.append(f"The number of weekly meetings must be 1 to {MAX_MEETINGS}.")
    if fields.meeting_minutes not in MEETING_MINUTES:
        problems.append("Meetings last 60, 90 or 120 minutes.")
    if fields.min_group_size < 1:
        problems.append("The smallest group needs at least 1 participant.")
    if fields.max_group_size < fields.min_group_size:
        problems.append(
            f"The largest group ({fields.max_group_size}) is smaller than the smallest "
            f"({fields.min_group_size})."
        )
    if fields.max_group_size > 50:
        problems.append("Groups of more than 50 are not groups; use at most 50.")
    if fields.completion_meetings is not None and not (
        0 <= fields.completion_meetings <= fields.meetings
    ):
        problems.append(
            f"Meetings to attend for completion: 0 to {fields.meetings} (the cohort's "
            "meetings), or empty for the course's rule."
        )
    if fields.completion_modules not in (None, "required", "all", "none"):
        problems.append("Modules for completion: required, all or none.")
    deadline = fields.enrollment_deadline
    if deadline is not None and deadline.date() > fields.start_date:
        problems.append("The enrollment deadline falls after the start date; move it earlier.")
    return problems


async def create_cohort(
    session: AsyncSession, fields: CohortFields, *, courses: set[str] | None = None
) -> Cohort:
    problems = check_cohort(fields, courses=courses)
    if problems:
        raise Invalid(" ".join(problems))
    cohort = Cohort(
        course_slug=fields.course_slug,
        name=" ".join(fields.name.split()),
        start_date=fields.start_date,
        meetings=fields.meetings,
        meeting_minutes=fields.meeting_minutes,
        min_group_size=fields.min_group_size,
        max_group_size=fields.max_group_size,
        needs_facilitator=fields.needs_facilitator,
        switch_needs_approval=fields.switch_needs_approval,
        completion_meetings=fields.completion_meetings,
        completion_modules=fields.completion_modules,
        enrollment_deadline=fields.enrollment_deadline,
        status=CohortStatus.OPEN,
    )
    session.add(cohort)
    await session.flush()
    return cohort


async def update_cohort(
    session: AsyncSession, cohort: Cohort, fields: CohortFields, *, courses: set[str] | None = None
) -> Cohort:
    problems = check_cohort(fields, courses=courses)
    if cohort.status in (CohortStatus.RUNNING, CohortStatus.FINISHED):
        fixed = ("course_slug", "start_date", "meetings", "meeting_minutes")
        if any(getattr(cohort, name) != getattr(fields, name) for name in fixed):
            problems.append(
                "The groups are approved and meet on a schedule: the course, start date, "
                "number of meetings and their length can no longer change."
            )
    if problems:
        raise Invalid(" ".join(problems))
    for name, value in fields.__dict__.items():
        setattr(cohort, name, value)
    await session.flush()
    return cohort


_NEXT_STATUS = {
    CohortStatus.OPEN: {CohortStatus.CLOSED},
    CohortStatus.CLOSED: {CohortStatus.OPEN},  # RUNNING only by approving groups
    CohortStatus.RUNNING: {CohortStatus.FINISHED},
    CohortStatus.FINISHED: set(),
}


async def set_status(session: AsyncSession, cohort: Cohort, status: str) -> None:
    try:
        new = CohortStatus(status)
    except ValueError:
        raise Invalid(f"{status!r} is not a cohort status.") from None
    if new not in _NEXT_STATUS[CohortStatus(cohort.status)]:
        raise Conflict(
            f"A cohort that is {cohort.status} cannot become {new}"
            + (" (approve groups to start it)." if new is CohortStatus.RUNNING else ".")
        )
    cohort.status = new
    await session.flush()
    if new is CohortStatus.FINISHED:
        await publish(session, CohortFinished(cohort_id=cohort.id))


async def get_cohort(session: AsyncSession, cohort_id: int) -> Cohort:
    cohort = await session.get(Cohort, cohort_id)
    if cohort is None:
        raise NotFound(f"There is no cohort {cohort_id}.")
    return cohort


@dataclass(frozen=True)
class CohortRow:
    cohort: Cohort
    participants: int
    facilitators: int


async def list_cohorts(
    session: AsyncSession, *, statuses: set[str] | None = None
) -> list[CohortRow]:
    counts: dict[tuple[int, str], int] = {}
    active = (SignupStatus.ENROLLED, SignupStatus.GROUPED, SignupStatus.UNPLACED)
    rows = await session.execute(
        select(Signup.cohort_id, Signup.role, func.count())
        .where(Signup.status.in_(active))
        .group_by(Signup.cohort_id, Signup.role)
    )
    for cohort_id, role, n in rows:
        counts[(cohort_id, role)] = n
    query = select(Cohort).order_by(Cohort.start_date.desc(), Cohort.id.desc())
    if statuses:
        query = query.where(Cohort.status.in_(statuses))
    return [
        CohortRow(
            c, counts.get((c.id, Role.PARTICIPANT), 0), counts.get((c.id, Role.FACILITATOR), 0)
        )
        for c in await session.scalars(query)
    ]


def accepts_signups(cohort: Cohort, *, now: datetime | None = None) -> bool:
    """Open cohorts take signups until the deadline; running ones take late joiners."""
    now = now or utcnow()
    if cohort.enrollment_deadline is not None and now > cohort.enrollment_deadline:
        return False
    return cohort.status in (CohortStatus.OPEN, CohortStatus.RUNNING)


async def list_enrollable(session: AsyncSession) -> list[Cohort]:
    cohorts = await session.scalars(
        select(Cohort)
        .where(Cohort.status.in_([CohortStatus.OPEN, CohortStatus.RUNNING]))
        .order_by(Cohort.start_date, Cohort.id)
    )
    return [c for c in cohorts if accepts_signups(c)]


# -- signups ----------------------------------------------------------------------------


async def get_signup(session: AsyncSession, *, cohort: Cohort, user: User) -> Signup | None:
    return await session.scalar(
        select(Signup).where(Signup.cohort_id == cohort.id, Signup.user_id == user.id)
    )


def can_change(cohort: Cohort, signup: Signup) -> bool:
    """People change their availability or withdraw until they are in a group."""
    if signup.status in (SignupStatus.GROUPED, SignupStatus.WITHDRAWN, SignupStatus.DEFERRED):
        return False
    return cohort.status in (CohortStatus.OPEN, CohortStatus.CLOSED, CohortStatus.RUNNING)


async def start_signup(session: AsyncSession, *, cohort: Cohort, user: User) -> Signup:
    """The signup a person's wizard works on (one per person per cohort)."""
    signup = await get_signup(session, cohort=cohort, user=user)
    if signup is not None:
        if signup.status == SignupStatus.WITHDRAWN and accepts_signups(cohort):
            signup.status, signup.withdrawn_at = SignupStatus.DRAFT, None
            await session.flush()
        return signup
    if not accepts_signups(cohort):
        raise Conflict(f"{cohort.name} is not taking signups any more.")
    signup = Signup(
        cohort_id=cohort.id,
        user_id=user.id,
        role=Role.PARTICIPANT,
        status=SignupStatus.DRAFT,
        timezone=user.timezone,
        availability={},
    )
    session.add(signup)
    await session.flush()
    return signup


def _require_changeable(cohort: Cohort, signup: Signup) -> None:
    if not can_change(cohort, signup):
        if signup.status == SignupStatus.GROUPED:
            raise Conflict(
                "You are already in a group; ask your facilitator or an admin to change it."
            )
        raise Conflict("This signup can no longer be changed.")


async def choose_role(
    session: AsyncSession, *, cohort: Cohort, signup: Signup, role: str, max_groups: int = 1
) -> Signup:
    _require_changeable(cohort, signup)
    try:
        chosen = Role(role)
    except ValueError:
        raise Invalid("Choose whether you join as a participant or as a facilitator.") from None
    if chosen is Role.FACILITATOR and not cohort.needs_facilitator:
        raise Invalid("Groups in this cohort have no facilitator; join as a participant.")
    if chosen is Role.FACILITATOR and not 1 <= max_groups <= MAX_FACILITATOR_GROUPS:
        raise Invalid(f"Facilitators lead 1 to {MAX_FACILITATOR_GROUPS} groups; choose how many.")
    if chosen is not Role(signup.role) and signup.status != SignupStatus.DRAFT:
        raise Conflict("To change your role, withdraw and sign up again.")
    signup.role = chosen
    signup.max_groups = max_groups if chosen is Role.FACILITATOR else 1
    if chosen is Role.FACILITATOR and signup.approved_at is None:
        signup.approved_at = await _approved_before(session, signup)
    await session.flush()
    return signup


async def _approved_before(session: AsyncSession, signup: Signup) -> datetime | None:
    """A facilitator an admin approved in an earlier cohort is not new: no second approval."""
    earlier = await session.scalar(
        select(func.count())
        .select_from(Signup)
        .where(
            Signup.user_id == signup.user_id,
            Signup.id != signup.id,
            Signup.role == Role.FACILITATOR,
            Signup.approved_at.is_not(None),
        )
    )
    return utcnow() if earlier else None


def check_availability(
    *, available: frozenset[int], if_needed: frozenset[int], meeting_minutes: int
) -> None:
    both = available & if_needed
    if both:
        raise Invalid("A time cannot be both 'available' and 'if needed'; pick one for each.")
    need = meeting_minutes // 30
    if longest_run(available | if_needed) < need:
        raise Invalid(
            f"Choose at least one stretch of {meeting_minutes} minutes in a row: meetings last "
            f"that long. More times make it likelier that you find a group."
        )


async def set_availability(
    session: AsyncSession,
    *,
    cohort: Cohort,
    signup: Signup,
    timezone: str,
    available: list[Any],
    if_needed: list[Any],
) -> Signup:
    _require_changeable(cohort, signup)
    zone = check_timezone(timezone) if timezone.strip() else None
    if zone is None:
        raise Invalid("Choose your time zone, so your times mean the right moments.")
    try:
        sure = check_slots(available, field="available")
        maybe = check_slots(if_needed, field="if needed")
    except ValueError as exc:
        raise Invalid(f"The availability could not be read ({exc}); reload the page.") from None
    check_availability(available=sure, if_needed=maybe, meeting_minutes=cohort.meeting_minutes)
    signup.timezone = zone
    signup.availability = {"available": sorted(sure), "if_needed": sorted(maybe)}
    if signup.status == SignupStatus.UNPLACED:
        signup.status, signup.unplaced_reason = SignupStatus.ENROLLED, None
    await session.flush()
    return signup


def availability_of(signup: Signup) -> tuple[frozenset[int], frozenset[int]]:
    data = signup.availability or {}
    return frozenset(data.get("available", [])), frozenset(data.get("if_needed", []))


async def confirm_signup(
    session: AsyncSession, *, cohort: Cohort, signup: Signup, user: User
) -> Signup:
    """The wizard's last step: check everything, then the person is enrolled."""
    if signup.status != SignupStatus.DRAFT:
        return signup
    if not accepts_signups(cohort):
        raise Conflict(f"{cohort.name} is not taking signups any more.")
    missing = []
    if user.terms_accepted_at is None:
        missing.append("accept the terms (step 1)")
    if not user.email:
        missing.append("give an e-mail address (step 1)")
    sure, maybe = availability_of(signup)
    if not signup.timezone or not (sure or maybe):
        missing.append("choose your weekly availability (step 3)")
    if missing:
        raise Invalid("Before you confirm, " + " and ".join(missing) + ".")
    signup.status = SignupStatus.ENROLLED
    signup.enrolled_at = utcnow()
    await session.flush()
    await publish(
        session, SignupConfirmed(signup_id=signup.id, user_id=user.id, cohort_id=cohort.id)
    )
    return signup


async def withdraw(session: AsyncSession, *, cohort: Cohort, signup: Signup) -> None:
    _require_changeable(cohort, signup)
    signup.status = SignupStatus.WITHDRAWN
    signup.withdrawn_at = utcnow()
    # Out of any grouping preview too, so approval cannot put them in a group.
    drafts = select(Group.id).where(Group.cohort_id == cohort.id, Group.status == GroupStatus.DRAFT)
    await session.execute(
        delete(GroupMember).where(
            GroupMember.signup_id == signup.id, GroupMember.group_id.in_(drafts)
        )
    )
    await session.flush()


async def approve_facilitator(session: AsyncSession, *, signup: Signup) -> None:
    if signup.role != Role.FACILITATOR:
        raise Invalid("Only facilitators need approval.")
    if signup.approved_at is None:
        signup.approved_at = utcnow()
        await session.flush()


@dataclass(frozen=True)
class SignupRow:
    signup: Signup
    user: User


async def list_signups(
    session: AsyncSession, *, cohort: Cohort, include_drafts: bool = False
) -> list[SignupRow]:
    query = (
        select(Signup, User)
        .join(User, User.id == Signup.user_id)
        .where(Signup.cohort_id == cohort.id)
        .order_by(Signup.role, Signup.id)
    )
    if not include_drafts:
        query = query.where(Signup.status != SignupStatus.DRAFT)
    return [SignupRow(s, u) for s, u in (await session.execute(query)).all()]


async def availability_pages(session: AsyncSession, *, user: User) -> list[tuple[str, str]]:
    """Where each of the person's signups has its availability edited, newest cohort first.

    Refuses (Conflict) when there is none to change, saying why.
    """
    pages = []
    grouped = False
    active = {CohortStatus.OPEN, CohortStatus.CLOSED, CohortStatus.RUNNING}
    # Cohorts are few (a handful a year); one look-up each keeps the rule in one place.
    for row in await list_cohorts(session, statuses={str(s) for s in active}):
        signup = await get_signup(session, cohort=row.cohort, user=user)
        if signup is None or signup.status == SignupStatus.WITHDRAWN:
            continue
        if signup.status == SignupStatus.GROUPED:
            grouped = True
        if not can_change(row.cohort, signup):
            continue
        if signup.status == SignupStatus.DRAFT:
            # Enrollment not finished: the wizard picks up at the step that is missing.
            pages.append((row.cohort.name, f"/enroll/{row.cohort.id}"))
        else:
            pages.append((row.cohort.name, f"/enroll/{row.cohort.id}/availability"))
    if pages:
        return pages
    if grouped:
        raise Conflict(
            "You are already in a group; ask your facilitator or an admin to change your time."
        )
    raise Conflict("You are not enrolled in a cohort. Use /signup to enroll.")
