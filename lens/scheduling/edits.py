"""An admin's edits of the grouping preview: move a person, set a facilitator, merge or
split groups. Each leaves the preview for the checker to judge (service.get_preview
shows every rule an edit broke); approval refuses while any is broken."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.models import (
    Cohort,
    Group,
    GroupMember,
    GroupStatus,
    Role,
    Signup,
)
from lens.errors import Invalid, NotFound
from lens.scheduling import algorithm as alg
from lens.scheduling.service import (
    check_groupable,
    get_preview,
    groups_of,
    load_problem,
    members_of,
)


async def _draft_group(session: AsyncSession, cohort: Cohort, group_id: int) -> Group:
    group = await session.get(Group, group_id)
    if group is None or group.cohort_id != cohort.id or group.status != GroupStatus.DRAFT:
        raise NotFound("That group is not in this preview any more; reload the page.")
    return group


async def _signup(session: AsyncSession, cohort: Cohort, signup_id: int) -> Signup:
    signup = await session.get(Signup, signup_id)
    if signup is None or signup.cohort_id != cohort.id:
        raise NotFound("That person is not in this cohort; reload the page.")
    return signup


async def _remove_from_drafts(session: AsyncSession, cohort: Cohort, signup_id: int) -> None:
    drafts = select(Group.id).where(Group.cohort_id == cohort.id, Group.status == GroupStatus.DRAFT)
    await session.execute(
        delete(GroupMember).where(
            GroupMember.signup_id == signup_id, GroupMember.group_id.in_(drafts)
        )
    )


async def move_person(
    session: AsyncSession, *, cohort: Cohort, signup_id: int, group_id: int | None
) -> None:
    """Put a participant in another draft group (or out of every group: None)."""
    check_groupable(cohort)
    signup = await _signup(session, cohort, signup_id)
    if signup.role != Role.PARTICIPANT:
        raise Invalid("Facilitators are changed with 'set facilitator'.")
    target = await _draft_group(session, cohort, group_id) if group_id is not None else None
    await _remove_from_drafts(session, cohort, signup_id)
    if target is not None:
        session.add(GroupMember(group_id=target.id, signup_id=signup_id, role=Role.PARTICIPANT))
    await session.flush()


async def draft_group_id(session: AsyncSession, *, cohort: Cohort, number: str) -> int:
    """The preview group an admin typed by its number ("3" or "Group 3")."""
    try:
        wanted = int(number.strip().removeprefix("Group").strip())
    except ValueError:
        raise Invalid(f"{number!r} is not a group number; type one from the list.") from None
    group_id = await session.scalar(
        select(Group.id).where(
            Group.cohort_id == cohort.id,
            Group.status == GroupStatus.DRAFT,
            Group.number == wanted,
        )
    )
    if group_id is None:
        raise Invalid(f"There is no group {wanted} in this preview; type one from the list.")
    return int(group_id)


async def move_person_to_number(
    session: AsyncSession, *, cohort: Cohort, signup_id: int, number: str
) -> None:
    """The preview's move form: a group number, or 0 / nothing for out of every group.

    (One number field per person keeps the page small: a list of every group beside
    every person grows as people x groups.)"""
    target = (
        None
        if number.strip() in ("", "0")
        else await draft_group_id(session, cohort=cohort, number=number)
    )
    await move_person(session, cohort=cohort, signup_id=signup_id, group_id=target)


async def set_facilitator(
    session: AsyncSession, *, cohort: Cohort, group_id: int, signup_id: int | None
) -> None:
    """Give a draft group this facilitator (their other groups keep them; the checker
    reports if that is more than they can lead)."""
    check_groupable(cohort)
    group = await _draft_group(session, cohort, group_id)
    await session.execute(
        delete(GroupMember).where(
            GroupMember.group_id == group.id, GroupMember.role == Role.FACILITATOR
        )
    )
    if signup_id is not None:
        signup = await _signup(session, cohort, signup_id)
        if signup.role != Role.FACILITATOR:
            raise Invalid("Only facilitators can lead a group.")
        session.add(GroupMember(group_id=group.id, signup_id=signup_id, role=Role.FACILITATOR))
    await session.flush()


async def merge_groups(session: AsyncSession, *, cohort: Cohort, into: int, other: int) -> None:
    """Move every participant of `other` into `into`; `other` and its facilitator go."""
    check_groupable(cohort)
    if into == other:
        raise Invalid("Choose two different groups to merge.")
    target = await _draft_group(session, cohort, into)
    source = await _draft_group(session, cohort, other)
    members = await members_of(session, [source])
    for member in members[source.id]:
        if member.role == Role.PARTICIPANT:
            session.add(
                GroupMember(group_id=target.id, signup_id=member.signup_id, role=Role.PARTICIPANT)
            )
    await session.delete(source)
    await session.flush()
    await _renumber(session, cohort)


async def split_group(session: AsyncSession, *, cohort: Cohort, group_id: int) -> Group:
    """Split a draft group in two at the same time; the new half gets a free facilitator who
    can make that time, if there is one."""
    check_groupable(cohort)
    group = await _draft_group(session, cohort, group_id)
    members = (await members_of(session, [group]))[group.id]
    participants = sorted(
        (m for m in members if m.role == Role.PARTICIPANT), key=lambda m: m.signup_id
    )
    if len(participants) < 2:
        raise Invalid(f"{group.name} has fewer than two participants; there is nothing to split.")
    number = (
        await session.scalar(select(func.max(Group.number)).where(Group.cohort_id == cohort.id))
        or 0
    ) + 1
    half = Group(
        cohort_id=cohort.id, run_id=group.run_id, number=number, start_slot=group.start_slot
    )
    session.add(half)
    await session.flush()
    for member in participants[len(participants) // 2 :]:
        await session.delete(member)
        session.add(
            GroupMember(group_id=half.id, signup_id=member.signup_id, role=Role.PARTICIPANT)
        )
    await session.flush()
    preview = await get_preview(session, cohort=cohort)
    built = await load_problem(session, cohort)
    facilitators = {f.id: f for f in built.problem.facilitators}
    k = built.problem.meeting_slots
    for row in preview.idle_facilitators:
        person = facilitators.get(row.signup.id)
        if person is not None and alg.can_attend(person, group.start_slot, k) is not None:
            session.add(
                GroupMember(group_id=half.id, signup_id=row.signup.id, role=Role.FACILITATOR)
            )
            break
    await session.flush()
    await _renumber(session, cohort)
    return half


async def _renumber(session: AsyncSession, cohort: Cohort) -> None:
    groups = await groups_of(session, cohort, GroupStatus.DRAFT)
    groups.sort(key=lambda g: (g.start_slot, g.number))
    for number, group in enumerate(groups, start=1):
        group.number = number
    await session.flush()
