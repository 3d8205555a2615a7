"""Grouping around the pure algorithm: build the problem from a cohort's signups, store
the result as a preview of draft groups, let an admin edit it with every rule re-checked,
approve it, and place late joiners."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.availability import local_time, meeting_weeks, to_utc
from lens.cohorts.models import (
    Cohort,
    CohortStatus,
    Group,
    GroupingRun,
    GroupMember,
    GroupStatus,
    Role,
    SignupStatus,
)
from lens.cohorts.service import REASON_TEXT, SignupRow, availability_of, list_signups
from lens.db.base import utcnow
from lens.errors import Conflict, Invalid, NotFound
from lens.events import publish
from lens.jobs.service import enqueue
from lens.logging import get_logger
from lens.meetings.service import create_meetings
from lens.scheduling import algorithm as alg
from lens.scheduling.events import GroupsApproved
from lens.users.models import User

log = get_logger("lens.scheduling")

GROUP_KIND = "scheduling.group"  # the job in scheduling/tasks.py

GROUPABLE = (SignupStatus.ENROLLED, SignupStatus.UNPLACED)


@dataclass
class Built:
    problem: alg.Problem
    rows: dict[int, SignupRow]  # signup id -> row
    weeks: list[date]
    unapproved: list[SignupRow]  # facilitators waiting for an admin


def build_problem(
    cohort: Cohort,
    rows: list[SignupRow],
    *,
    seed: int = 0,
    time_limit: float | None = None,
    statuses: tuple[str, ...] = GROUPABLE,
) -> Built:
    # One week more than the meetings: a slot earlier in the week than the start date
    # first comes round a week later, so the series can end a week later too.
    weeks = meeting_weeks(cohort.start_date, cohort.meetings + 1)
    participants: list[alg.Person] = []
    facilitators: list[alg.Facilitator] = []
    unapproved = []
    by_id: dict[int, SignupRow] = {}
    for row in rows:
        signup = row.signup
        if signup.status not in statuses:
            continue
        by_id[signup.id] = row
        local_sure, local_maybe = availability_of(signup)
        sure, maybe = (
            to_utc(signup.timezone, local_sure, local_maybe, weeks)
            if signup.timezone
            else (frozenset(), frozenset())
        )
        if signup.role == Role.FACILITATOR:
            if signup.approved_at is None:
                unapproved.append(row)
                continue
            facilitators.append(alg.Facilitator(signup.id, sure, maybe, signup.max_groups))
        else:
            participants.append(alg.Person(signup.id, sure, maybe))
    problem = alg.Problem(
        participants=tuple(participants),
        facilitators=tuple(facilitators) if cohort.needs_facilitator else (),
        meeting_slots=cohort.meeting_minutes // alg.SLOT_MINUTES,
        min_size=cohort.min_group_size,
        max_size=cohort.max_group_size,
        needs_facilitator=cohort.needs_facilitator,
        seed=seed,
        # The algorithm's default budget meets the targets in bench/scheduling.py
        # (about 7 s at 1,000 people and 9 s at 5,000 on 2 cores).
        **({"time_limit_seconds": time_limit} if time_limit else {}),
    )
    return Built(problem, by_id, weeks, unapproved)


async def load_problem(session: AsyncSession, cohort: Cohort, *, seed: int = 0) -> Built:
    return build_problem(cohort, await list_signups(session, cohort=cohort), seed=seed)


def check_groupable(cohort: Cohort) -> None:
    if cohort.status not in (CohortStatus.OPEN, CohortStatus.CLOSED):
        raise Conflict(f"{cohort.name} is {cohort.status}; its groups are already approved.")


async def request_grouping(
    session: AsyncSession, *, cohort: Cohort, by: User | None, seed: int = 0
) -> GroupingRun:
    """Queue a grouping run (the worker runs it; the preview page shows its progress)."""
    check_groupable(cohort)
    if not 0 <= seed < 2**31 - 10_000:
        raise Invalid("The seed must be a whole number from 0 to 2,000,000,000.")
    if await run_in_progress(session, cohort):
        raise Conflict("A grouping run for this cohort is already under way; wait for it.")
    run = GroupingRun(
        cohort_id=cohort.id, status="queued", seed=seed, requested_by=by.id if by else None
    )
    session.add(run)
    await session.flush()
    await enqueue(session, kind=GROUP_KIND, payload={"run_id": run.id})
    return run


async def run_in_progress(session: AsyncSession, cohort: Cohort) -> bool:
    found = await session.scalar(
        select(GroupingRun.id).where(
            GroupingRun.cohort_id == cohort.id, GroupingRun.status.in_(["queued", "running"])
        )
    )
    return found is not None


async def lock_cohort(session: AsyncSession, cohort_id: int) -> Cohort:
    """The cohort row, locked (PostgreSQL) so approval and runs do not interleave."""
    cohort = await session.get(Cohort, cohort_id, with_for_update=True, populate_existing=True)
    if cohort is None:
        raise NotFound(f"There is no cohort {cohort_id}.")
    return cohort


async def run_grouping(session: AsyncSession, *, run: GroupingRun) -> GroupingRun:
    """Form groups for the run's cohort and store them as the run's draft groups."""
    cohort = await session.get(Cohort, run.cohort_id)
    if cohort is None:
        raise NotFound(f"There is no cohort {run.cohort_id}.")
    check_groupable(cohort)
    built = await load_problem(session, cohort, seed=run.seed)
    run.status = "running"
    await session.flush()
    started = time.perf_counter()
    # CPU-bound (the solver): off the event loop, so leases and requests keep going.
    result = await asyncio.to_thread(alg.form_groups, built.problem)
    smaller = await _with_smaller_minimum(built.problem, result)
    seconds = time.perf_counter() - started
    # Checked again under the lock: the cohort may have been approved meanwhile.
    cohort = await lock_cohort(session, cohort.id)
    check_groupable(cohort)
    # Earlier previews of this cohort are replaced by this one.
    await session.execute(
        delete(Group).where(Group.cohort_id == cohort.id, Group.status == GroupStatus.DRAFT)
    )
    ordered = sorted(result.groups, key=lambda g: (g.start_slot, g.facilitator_id or 0))
    for number, found in enumerate(ordered, start=1):
        group = Group(
            cohort_id=cohort.id, run_id=run.id, number=number, start_slot=found.start_slot
        )
        session.add(group)
        await session.flush()
        for signup_id in found.participant_ids:
            session.add(GroupMember(group_id=group.id, signup_id=signup_id, role=Role.PARTICIPANT))
        if found.facilitator_id is not None:
            session.add(
                GroupMember(
                    group_id=group.id, signup_id=found.facilitator_id, role=Role.FACILITATOR
                )
            )
    run.status = "done"
    run.summary = {
        "solver": result.status,
        "participants": len(built.problem.participants),
        "facilitators": len(built.problem.facilitators),
        "placed": result.placed,
        "placed_in_available": result.placed_in_available,
        "upper_bound": result.upper_bound,
        "seconds": round(seconds, 2),
        "unplaced": {str(u.person_id): str(u.reason) for u in result.unplaced},
        # What would place each of them without moving anyone (see _unplaced_text).
        "changes": {
            str(u.person_id): {
                "kind": str(u.change.kind),
                "slot": u.change.start_slot,
                "size": u.change.group_size,
            }
            for u in result.unplaced
            if u.change is not None
        },
        "unapproved": [row.signup.id for row in built.unapproved],
        "smaller_min": smaller,
    }
    await session.flush()
    log.info(
        "scheduling.run.done",
        cohort=cohort.id,
        run=run.id,
        placed=result.placed,
        participants=len(built.problem.participants),
        solver=result.status,
        seconds=round(seconds, 2),
    )
    return run


SIZE_REASONS = (alg.UnplacedReason.NO_SHARED_SLOT, alg.UnplacedReason.GROUPS_FULL)


async def _with_smaller_minimum(problem: alg.Problem, result: alg.Result) -> dict[str, int] | None:
    """When people are left out for group size, how many more a minimum one smaller would
    place (the admin may lower it and run again); None when it would place nobody more."""
    if problem.min_size <= 1 or not any(u.reason in SIZE_REASONS for u in result.unplaced):
        return None
    smaller = replace(
        problem,
        min_size=problem.min_size - 1,
        time_limit_seconds=max(1.0, problem.time_limit_seconds / 2),
    )
    other = await asyncio.to_thread(alg.form_groups, smaller)
    more = other.placed - result.placed
    return {"min": smaller.min_size, "more": more} if more > 0 else None


async def latest_run(session: AsyncSession, *, cohort: Cohort) -> GroupingRun | None:
    return await session.scalar(
        select(GroupingRun)
        .where(GroupingRun.cohort_id == cohort.id)
        .order_by(GroupingRun.id.desc())
        .limit(1)
    )


# -- the preview ------------------------------------------------------------------------


@dataclass
class MemberView:
    row: SignupRow
    role: str
    tier: alg.Tier | None  # how they can make the group's time (None: they cannot)
    local: str  # the meeting time in their zone, first meeting week


@dataclass
class GroupView:
    group: Group
    participants: list[MemberView]
    facilitator: MemberView | None
    violations: list[str] = field(default_factory=list)


@dataclass
class Preview:
    cohort: Cohort
    run: GroupingRun | None
    groups: list[GroupView]
    unplaced: list[tuple[SignupRow, str]]  # with the reason, in words
    idle_facilitators: list[SignupRow]
    unapproved: list[SignupRow]
    violations: list[str]  # every broken rule, worded for the admin
    heat_participants: list[int]  # per UTC slot: participants who can start a meeting there
    heat_facilitators: list[int]

    @property
    def placed(self) -> int:
        return sum(len(g.participants) for g in self.groups)


def _unplaced_text(summary: dict[str, Any], signup_id: str, monday: date) -> str:
    """After the reason, for the admin: whether any grouping could place the person, and a
    change to the cohort that would place them with nobody moved, when the run found one."""
    reason = summary["unplaced"][signup_id]
    if reason in alg.UNPLACEABLE:
        text = ". No grouping could place them"
    elif summary.get("solver") == "optimal":
        text = (
            ". Another grouping could place them, but only by leaving out someone"
            " placed now (none places more people)"
        )
    else:
        text = ". A better grouping might place them (this one is not proven the most possible)"
    change = summary.get("changes", {}).get(signup_id)
    if change:
        when = f"{local_time(change['slot'], monday, 'UTC'):%a %H:%M} UTC"
        if change["kind"] == alg.ChangeKind.FACILITATOR:
            text += (
                f". A facilitator free at {when} would lead a new group of"
                f" {change['size']} with them"
            )
        else:
            text += (
                f". A maximum group size of {change['size']} would let them join the"
                f" group at {when}"
            )
    return text + "."


def _local_label(row: SignupRow, start_slot: int, monday: date) -> str:
    zone = row.signup.timezone or "UTC"
    moment = local_time(start_slot, monday, zone)
    return f"{moment:%a %H:%M} {zone}"


async def groups_of(session: AsyncSession, cohort: Cohort, status: GroupStatus) -> list[Group]:
    return list(
        await session.scalars(
            select(Group)
            .where(Group.cohort_id == cohort.id, Group.status == status)
            .order_by(Group.number)
        )
    )


async def members_of(session: AsyncSession, groups: list[Group]) -> dict[int, list[GroupMember]]:
    out: dict[int, list[GroupMember]] = {g.id: [] for g in groups}
    if groups:
        for member in await session.scalars(
            select(GroupMember).where(GroupMember.group_id.in_(list(out)))
        ):
            out[member.group_id].append(member)
    return out


def _heat(people: tuple[alg.Person, ...], meeting_slots: int) -> list[int]:
    counts = [0] * alg.SLOTS_PER_WEEK
    for person in people:
        for slot in range(alg.SLOTS_PER_WEEK):
            if alg.can_attend(person, slot, meeting_slots) is not None:
                counts[slot] += 1
    return counts


async def get_preview(
    session: AsyncSession, *, cohort: Cohort, status: GroupStatus = GroupStatus.DRAFT
) -> Preview:
    rows = await list_signups(session, cohort=cohort, include_drafts=True)
    # Approved groups are judged with their members (grouped now), the preview with
    # everyone still to place.
    built = build_problem(
        cohort,
        rows,
        statuses=(*GROUPABLE, SignupStatus.GROUPED) if status == GroupStatus.ACTIVE else GROUPABLE,
    )
    everyone = {row.signup.id: row for row in rows}
    people: dict[int, alg.Person] = {p.id: p for p in built.problem.participants}
    people.update({f.id: f for f in built.problem.facilitators})
    groups = await groups_of(session, cohort, status)
    members = await members_of(session, groups)
    run = await latest_run(session, cohort=cohort)
    monday = built.weeks[0]
    k = built.problem.meeting_slots

    def view(member: GroupMember, group: Group) -> MemberView:
        row = everyone[member.signup_id]
        person = people.get(member.signup_id)
        tier = alg.can_attend(person, group.start_slot, k) if person else None
        return MemberView(row, member.role, tier, _local_label(row, group.start_slot, monday))

    views = []
    algorithm_groups = []
    placed: set[int] = set()
    gone: list[str] = []
    for group in groups:
        for m in members[group.id]:
            if m.signup_id not in built.rows:
                row = everyone.get(m.signup_id)
                who = row.user.display_name if row else f"signup {m.signup_id}"
                gone.append(f"{who}: no longer enrolled, but still in {group.name}; move them out")
        mine = [m for m in members[group.id] if m.signup_id in everyone]
        participants = [view(m, group) for m in mine if m.role == Role.PARTICIPANT]
        leads = [view(m, group) for m in mine if m.role == Role.FACILITATOR]
        views.append(GroupView(group, participants, leads[0] if leads else None))
        placed.update(m.signup_id for m in mine)
        algorithm_groups.append(
            alg.Group(
                group.start_slot,
                tuple(
                    m.signup_id
                    for m in mine
                    if m.role == Role.PARTICIPANT and m.signup_id in built.rows
                ),
                leads[0].row.signup.id if leads and leads[0].row.signup.id in built.rows else None,
            )
        )
    violations = list(gone)
    for v in alg.check_groups(built.problem, algorithm_groups):
        name = everyone[v.person_id].user.display_name if v.person_id in everyone else None
        text = f"{name}: {v.message}" if name else v.message
        violations.append(text)
        if v.group_index is not None:
            views[v.group_index].violations.append(text)
    summary = (run.summary or {}) if run else {}
    reasons = summary.get("unplaced", {})
    unplaced = [
        (
            row,
            REASON_TEXT.get(
                (row.signup.unplaced_reason if status == GroupStatus.ACTIVE else None)
                or reasons.get(str(sid), ""),
                "moved out of the groups by hand",
            )
            + (
                _unplaced_text(summary, str(sid), monday)
                if status == GroupStatus.DRAFT and str(sid) in reasons
                else ""
            ),
        )
        for sid, row in built.rows.items()
        if row.signup.role == Role.PARTICIPANT and sid not in placed
    ]
    idle = [
        row
        for sid, row in built.rows.items()
        if row.signup.role == Role.FACILITATOR and row.signup.approved_at and sid not in placed
    ]
    return Preview(
        cohort=cohort,
        run=run,
        groups=views,
        unplaced=unplaced,
        idle_facilitators=idle,
        unapproved=built.unapproved,
        violations=violations,
        heat_participants=_heat(built.problem.participants, k),
        heat_facilitators=_heat(built.problem.facilitators, k),
    )


async def approve(session: AsyncSession, *, cohort: Cohort, by: User | None) -> Preview:
    """Make the preview's groups the cohort's groups; the cohort starts running."""
    cohort = await lock_cohort(session, cohort.id)
    check_groupable(cohort)
    if await run_in_progress(session, cohort):
        raise Conflict("A grouping run is under way; approve once its preview is shown.")
    preview = await get_preview(session, cohort=cohort)
    if not preview.groups:
        raise Conflict("There are no groups to approve; run the grouping first.")
    if preview.violations:
        raise Conflict(
            f"Fix the {len(preview.violations)} problem(s) shown before approving: "
            + preview.violations[0]
        )
    for view in preview.groups:
        view.group.status = GroupStatus.ACTIVE
        for member in [*view.participants, *([view.facilitator] if view.facilitator else [])]:
            member.row.signup.status = SignupStatus.GROUPED
            member.row.signup.unplaced_reason = None
    reasons = (preview.run.summary or {}).get("unplaced", {}) if preview.run else {}
    for row, _ in preview.unplaced:
        row.signup.status = SignupStatus.UNPLACED
        row.signup.unplaced_reason = reasons.get(str(row.signup.id), "moved_by_hand")
    for row in preview.idle_facilitators:
        row.signup.status = SignupStatus.UNPLACED
        row.signup.unplaced_reason = "facilitator_not_needed"
    if preview.run is not None:
        preview.run.status, preview.run.approved_at = "approved", utcnow()
    cohort.status = CohortStatus.RUNNING
    await session.flush()
    for view in preview.groups:
        await create_meetings(session, cohort=cohort, group=view.group)
    # The group messages and reminders, the groups' Discord spaces.
    await publish(
        session,
        GroupsApproved(cohort_id=cohort.id, group_ids=tuple(v.group.id for v in preview.groups)),
    )
    log.info(
        "scheduling.approved",
        cohort=cohort.id,
        groups=len(preview.groups),
        by=by.id if by else None,
    )
    return preview
