"""Completion: a participant completes a cohort by attending enough of the group's
meetings (present or late; a guest visit counts) and completing the modules the rule
asks for. The rule is the cohort's where it sets one, else the course's
(`completion_meetings:`, `completion_modules:` in the course file), else two thirds of
the meetings, rounded up, and every required module. Tests count once questions and
tests exist (they do not yet: the rule has no test part).

Evaluated on every read, from the attendance and reading progress as they are: a module
completed after the cohort ended still counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.visitors import user_actor
from lens.cohorts.models import Cohort, Group, GroupMember, GroupStatus, Role, Signup, SignupStatus
from lens.cohorts.service import SignupRow
from lens.content.parsed import ContentSet, Course, Module
from lens.courses.models import Progress
from lens.courses.service import course_modules, module_key, module_status
from lens.meetings.attendance import attended
from lens.users.models import User

IN_COHORT = (SignupStatus.GROUPED, SignupStatus.UNPLACED, SignupStatus.ENROLLED)


@dataclass(frozen=True)
class Rule:
    meetings: int  # to attend
    modules: str  # "required", "all" or "none"
    source: str  # where the rule comes from, for the admin: cohort, course or default

    def describe(self, modules: int) -> str:
        parts = [f"attend {self.meetings} meeting{'' if self.meetings == 1 else 's'}"]
        if self.modules != "none" and modules:
            which = "every module" if self.modules == "all" else "every required module"
            parts.append(f"complete {which} ({modules})")
        return " and ".join(parts)


def default_meetings(cohort: Cohort) -> int:
    return -(-2 * cohort.meetings // 3)  # two thirds, rounded up


def rule_for(cohort: Cohort, course: Course | None) -> Rule:
    if cohort.completion_meetings is not None:
        meetings, source = cohort.completion_meetings, "cohort"
    elif course is not None and course.completion_meetings is not None:
        meetings, source = min(course.completion_meetings, cohort.meetings), "course"
    else:
        meetings, source = default_meetings(cohort), "default"
    modules = cohort.completion_modules or (course.completion_modules if course else "required")
    if cohort.completion_modules and source != "cohort":
        source = f"cohort and {source}"  # the modules are the cohort's, the meetings not
    return Rule(meetings, modules, source)


def modules_for(rule: Rule, content: ContentSet | None, course: Course | None) -> list[Module]:
    if content is None or course is None or rule.modules == "none":
        return []
    return [
        m
        for item, m in course_modules(content, course)
        if rule.modules == "all" or not item.optional
    ]


@dataclass(frozen=True)
class Standing:
    row: SignupRow
    group: Group | None
    attended: int
    meetings_needed: int
    modules_done: list[Module] = field(default_factory=list)
    modules_missing: list[Module] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.attended >= self.meetings_needed and not self.modules_missing

    @property
    def missing(self) -> list[str]:
        """What is left, in words."""
        out = []
        left = self.meetings_needed - self.attended
        if left > 0:
            out.append(f"{left} more meeting{'' if left == 1 else 's'}")
        if self.modules_missing:
            titles = ", ".join(m.title for m in self.modules_missing[:5])
            more = len(self.modules_missing) - 5
            out.append(
                f"module{'' if len(self.modules_missing) == 1 else 's'}: {titles}"
                + (f" and {more} more" if more > 0 else "")
            )
        return out


async def standings(
    session: AsyncSession,
    *,
    cohort: Cohort,
    content: ContentSet | None,
    signup_ids: Iterable[int] | None = None,
) -> tuple[Rule, list[Standing]]:
    """The rule, and each participant's standing (all the cohort's, or those asked)."""
    course = content.courses.get(cohort.course_slug) if content else None
    rule = rule_for(cohort, course)
    modules = modules_for(rule, content, course)
    query = (
        select(Signup, User)
        .join(User, User.id == Signup.user_id)
        .where(
            Signup.cohort_id == cohort.id,
            Signup.role == Role.PARTICIPANT,
            Signup.status.in_(IN_COHORT),
        )
        .order_by(User.id)
    )
    if signup_ids is not None:
        query = query.where(Signup.id.in_(list(signup_ids) or [-1]))
    rows = [SignupRow(s, u) for s, u in (await session.execute(query)).all()]
    ids = [r.signup.id for r in rows]
    groups = {
        signup_id: group
        for signup_id, group in await session.execute(
            select(GroupMember.signup_id, Group)
            .join(Group, Group.id == GroupMember.group_id)
            .where(
                GroupMember.signup_id.in_(ids or [-1]),
                GroupMember.role == Role.PARTICIPANT,
                Group.status == GroupStatus.ACTIVE,
            )
        )
    }
    came = await attended(session, signup_ids=ids)
    actors = {user_actor(r.user.id): r.signup.id for r in rows}
    progress: dict[int, dict[tuple[str, str], Progress]] = {i: {} for i in ids}
    keys = [module_key(m) for m in modules]
    if actors and keys:
        for p in await session.scalars(
            select(Progress).where(Progress.actor.in_(list(actors)), Progress.module_key.in_(keys))
        ):
            progress[actors[p.actor]][(p.module_key, p.content_id)] = p
    out = []
    for r in rows:
        mine = progress[r.signup.id]
        done = [m for m in modules if module_status(m, mine)[0] == "completed"]
        finished = {id(m) for m in done}
        missing = [m for m in modules if id(m) not in finished]
        out.append(
            Standing(
                r, groups.get(r.signup.id), came.get(r.signup.id, 0), rule.meetings, done, missing
            )
        )
    return rule, out
