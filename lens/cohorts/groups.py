"""Active groups as their members and facilitator see them, and who may see what.

A facilitator's rights are per group: they see the progress and tutor transcripts of
the members of the groups they lead, and nobody else's. Members see their own group.
Admins see every group.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.visitors import user_actor
from lens.cohorts.models import Cohort, Group, GroupMember, GroupStatus, Role, Signup
from lens.cohorts.service import SignupRow
from lens.content.parsed import ContentSet
from lens.courses.models import Progress
from lens.courses.service import course_modules, module_key, module_status
from lens.errors import Forbidden, NotFound
from lens.users.models import User


@dataclass(frozen=True)
class GroupAccess:
    group: Group
    cohort: Cohort
    members: list[SignupRow]  # facilitator first
    viewer_leads: bool  # the viewer is this group's facilitator (or an admin)

    @property
    def facilitator(self) -> SignupRow | None:
        return next((r for r in self.members if r.signup.role == Role.FACILITATOR), None)

    @property
    def participants(self) -> list[SignupRow]:
        return [r for r in self.members if r.signup.role == Role.PARTICIPANT]


async def get_group(session: AsyncSession, *, group_id: int, viewer: User) -> GroupAccess:
    """The group, if the viewer is in it, leads it or is an admin (else Forbidden)."""
    group = await session.get(Group, group_id)
    if group is None or group.status != GroupStatus.ACTIVE:
        raise NotFound("There is no such group.")
    cohort = await session.get(Cohort, group.cohort_id)
    assert cohort is not None
    rows = (
        await session.execute(
            select(Signup, User, GroupMember.role)
            .join(GroupMember, GroupMember.signup_id == Signup.id)
            .join(User, User.id == Signup.user_id)
            .where(GroupMember.group_id == group.id)
            .order_by(GroupMember.role.desc(), User.id)
        )
    ).all()
    members = [SignupRow(s, u) for s, u, _ in rows]
    leads = any(u.id == viewer.id and role == Role.FACILITATOR for _, u, role in rows)
    if not (viewer.is_admin or leads or any(u.id == viewer.id for _, u, _ in rows)):
        raise Forbidden("This group's page is for its members and facilitator.")
    return GroupAccess(group, cohort, members, leads or viewer.is_admin)


async def get_group_to_lead(session: AsyncSession, *, group_id: int, viewer: User) -> GroupAccess:
    """The group, if the viewer is its facilitator or an admin (else Forbidden)."""
    access = await get_group(session, group_id=group_id, viewer=viewer)
    if not access.viewer_leads:
        raise Forbidden("Only this group's facilitator and the course team see this.")
    return access


async def list_my_groups(session: AsyncSession, *, user: User) -> list[tuple[Group, Cohort, str]]:
    """Active groups the person is in, with their role there."""
    rows = await session.execute(
        select(Group, Cohort, GroupMember.role)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .join(Signup, Signup.id == GroupMember.signup_id)
        .join(Cohort, Cohort.id == Group.cohort_id)
        .where(Signup.user_id == user.id, Group.status == GroupStatus.ACTIVE)
        .order_by(Cohort.start_date.desc(), Group.number)
    )
    return [(g, c, role) for g, c, role in rows.all()]


@dataclass(frozen=True)
class MemberProgress:
    row: SignupRow
    completed: int  # required modules completed
    started: int  # modules with any progress
    minutes: int  # time on task, all modules of the course


async def member_progress(
    session: AsyncSession, *, access: GroupAccess, content: ContentSet | None
) -> tuple[list[MemberProgress], int]:
    """Each participant's progress through the cohort's course, and the module count."""
    course = content.courses.get(access.cohort.course_slug) if content else None
    if content is None or course is None:
        return [MemberProgress(r, 0, 0, 0) for r in access.participants], 0
    modules = [m for item, m in course_modules(content, course) if not item.optional]
    keys = [module_key(m) for m in modules]
    actors = {user_actor(r.user.id): r for r in access.participants}
    by_actor: dict[str, dict[tuple[str, str], Progress]] = {a: {} for a in actors}
    if actors and keys:
        rows = await session.scalars(
            select(Progress).where(Progress.actor.in_(list(actors)), Progress.module_key.in_(keys))
        )
        for progress in rows:
            by_actor[progress.actor][(progress.module_key, progress.content_id)] = progress
    out = []
    for actor, row in actors.items():
        mine = by_actor[actor]
        statuses = [module_status(m, mine)[0] for m in modules]
        seconds = sum(p.seconds for p in mine.values())
        out.append(
            MemberProgress(
                row,
                completed=statuses.count("completed"),
                started=sum(1 for s in statuses if s != "not started"),
                minutes=round(seconds / 60),
            )
        )
    return out, len(modules)
