"""A person as the course team sees them: their roles in cohorts, signups, groups and
reading, for the admin's people pages (people_pages.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.visitors import user_actor
from lens.cohorts.groups import list_my_groups
from lens.cohorts.models import Cohort, CohortStatus, Group, Role, Signup, SignupStatus
from lens.content.parsed import ContentSet
from lens.courses.models import Progress
from lens.courses.service import course_modules, module_key, module_status
from lens.errors import Conflict, Invalid, NotFound
from lens.users.models import User

# Signups that hold a place in a cohort (not an unfinished wizard, not gone).
_HOLDING = (SignupStatus.ENROLLED, SignupStatus.GROUPED, SignupStatus.UNPLACED)


@dataclass(frozen=True)
class FacilitatorRole:
    cohort: Cohort
    approved: bool


@dataclass(frozen=True)
class PersonSignup:
    signup: Signup
    cohort: Cohort

    @property
    def awaits_approval(self) -> bool:
        """A facilitator an admin has yet to approve (it is done once per person)."""
        return (
            self.signup.role == Role.FACILITATOR
            and self.signup.approved_at is None
            and self.signup.status in _HOLDING
        )

    @property
    def can_change_group(self) -> bool:
        """The cohort runs: an admin may put them in a group or take them out."""
        return (
            self.cohort.status == CohortStatus.RUNNING and self.signup.status != SignupStatus.DRAFT
        )


@dataclass(frozen=True)
class CourseReading:
    title: str
    slug: str
    completed: list[str]  # titles of the modules completed, in course order
    completed_required: int
    required: int
    started: int  # modules with any progress
    minutes: int  # time on task


@dataclass(frozen=True)
class Person:
    user: User
    signups: list[PersonSignup]  # newest cohort first
    groups: list[tuple[Group, Cohort, str]]  # active groups, with their role there
    reading: list[CourseReading]

    @property
    def facilitates(self) -> list[FacilitatorRole]:
        return [
            FacilitatorRole(s.cohort, s.signup.approved_at is not None)
            for s in self.signups
            if s.signup.role == Role.FACILITATOR and s.signup.status in _HOLDING
        ]


def check_id(raw: str, *, what: str = "person") -> int:
    """An id from an address or a form; anything else names what is missing (404)."""
    raw = raw.strip()
    # Nine digits at most: larger numbers are no id of ours, and PostgreSQL would refuse
    # them for an integer column instead of finding nothing.
    if not raw.isdigit() or len(raw) > 9:
        raise NotFound(f"There is no {what} {raw!r}.")
    return int(raw)


async def get_person_user(session: AsyncSession, *, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"There is no person with the number {user_id}.")
    return user


async def facilitator_roles(
    session: AsyncSession, *, user_ids: list[int]
) -> dict[int, list[FacilitatorRole]]:
    """The cohorts each person facilitates in (one query for a page of people)."""
    out: dict[int, list[FacilitatorRole]] = {}
    if not user_ids:
        return out
    rows = await session.execute(
        select(Signup.user_id, Signup.approved_at, Cohort)
        .join(Cohort, Cohort.id == Signup.cohort_id)
        .where(
            Signup.user_id.in_(user_ids),
            Signup.role == Role.FACILITATOR,
            Signup.status.in_(_HOLDING),
        )
        .order_by(Cohort.start_date.desc(), Cohort.id.desc())
    )
    for user_id, approved_at, cohort in rows.all():
        out.setdefault(user_id, []).append(FacilitatorRole(cohort, approved_at is not None))
    return out


async def get_person(session: AsyncSession, *, user: User, content: ContentSet | None) -> Person:
    """Everything the admin's page of a person shows from the cohorts and the reader."""
    signups = [
        PersonSignup(s, c)
        for s, c in (
            await session.execute(
                select(Signup, Cohort)
                .join(Cohort, Cohort.id == Signup.cohort_id)
                .where(Signup.user_id == user.id)
                .order_by(Cohort.start_date.desc(), Cohort.id.desc())
            )
        ).all()
    ]
    groups = await list_my_groups(session, user=user)
    courses = {s.cohort.course_slug for s in signups}
    return Person(user, signups, groups, await _reading(session, user, content, courses))


async def _reading(
    session: AsyncSession, user: User, content: ContentSet | None, enrolled: set[str]
) -> list[CourseReading]:
    """Progress per course: every course they enrolled in or read any of."""
    if content is None:
        return []
    rows: dict[tuple[str, str], Progress] = {
        (p.module_key, p.content_id): p
        for p in await session.scalars(
            select(Progress).where(Progress.actor == user_actor(user.id))
        )
    }
    touched = {key for key, _ in rows}
    out = []
    for course in sorted(content.courses.values(), key=lambda c: c.title):
        items = course_modules(content, course)
        keys = {module_key(m) for _, m in items}
        if course.slug not in enrolled and not keys & touched:
            continue
        statuses = [(item, m, module_status(m, rows)[0]) for item, m in items]
        out.append(
            CourseReading(
                title=course.title,
                slug=course.slug,
                completed=[m.title for _, m, s in statuses if s == "completed"],
                completed_required=sum(
                    1 for item, _, s in statuses if not item.optional and s == "completed"
                ),
                required=sum(1 for item, _, _ in statuses if not item.optional),
                started=sum(1 for _, _, s in statuses if s != "not started"),
                minutes=round(sum(p.seconds for (k, _), p in rows.items() if k in keys) / 60),
            )
        )
    return out


async def get_person_signup(session: AsyncSession, *, user: User, signup_id: int) -> Signup:
    signup = await session.get(Signup, signup_id)
    if signup is None or signup.user_id != user.id:
        raise NotFound(f"{user.display_name} has no signup {signup_id}.")
    return signup


def check_approvable(signup: Signup) -> None:
    """Approval on a person's page: only a facilitator signup that holds a place."""
    if signup.role != Role.FACILITATOR:
        raise Invalid("This signup is a participant's; only facilitators need approval.")
    if signup.status not in _HOLDING:
        raise Conflict(
            f"This signup is {signup.status}; approve a facilitator once they have enrolled."
        )
