"""Planning a change to a running cohort's groups (see lens/scheduling/changes.py): what
an admin asks for, the rules it is checked against, the consequences worded for the
admin, and a token of the state it was planned on."""

from __future__ import annotations

import hashlib
import json
import zoneinfo
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

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
from lens.cohorts.service import SignupRow
from lens.db.base import utcnow
from lens.errors import Conflict, Invalid, NotFound
from lens.meetings.models import Meeting
from lens.meetings.service import WeeklyFit, can_make
from lens.scheduling.service import GROUPABLE
from lens.users.models import User

ADD = "member.add"
MOVE = "member.move"
REMOVE = "member.remove"
FACILITATOR = "facilitator.swap"
SUBSTITUTE = "facilitator.substitute"
UNSUBSTITUTE = "facilitator.unsubstitute"
ACTIONS = {
    ADD: "Add to a group",
    MOVE: "Move to another group",
    REMOVE: "Remove from their group",
    FACILITATOR: "Make facilitator of a group",
    SUBSTITUTE: "Stand in as facilitator for one meeting",
    UNSUBSTITUTE: "Take back a stand-in",
}


@dataclass(frozen=True)
class Ask:
    """What the admin asked for (from the form)."""

    action: str
    signup_id: int  # the person concerned (for facilitator changes: the new facilitator)
    group_id: int | None = None  # the group joined, or whose facilitator changes
    meeting_number: int | None = None  # substitute: the one meeting


@dataclass
class Plan:
    ask: Ask
    cohort: Cohort
    person: SignupRow
    source: Group | None = None  # the group they leave
    target: Group | None = None  # the group they join, or whose facilitator changes
    meeting: Meeting | None = None  # a substitute's meeting
    replaced: SignupRow | None = None  # the facilitator replaced (or stood in for)
    dropped: SignupRow | None = None  # a substitute: the stand-in they replace
    problems: list[str] = field(default_factory=list)  # any: the change is refused
    warnings: list[str] = field(default_factory=list)  # allowed, but look
    effects: list[str] = field(default_factory=list)  # what confirming will do
    token: str = ""

    @property
    def allowed(self) -> bool:
        return not self.problems

    @property
    def title(self) -> str:
        return ACTIONS[self.ask.action]


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


async def _member_rows(session: AsyncSession, group: Group) -> list[tuple[SignupRow, str]]:
    rows = await session.execute(
        select(Signup, User, GroupMember.role)
        .join(GroupMember, GroupMember.signup_id == Signup.id)
        .join(User, User.id == Signup.user_id)
        .where(GroupMember.group_id == group.id)
        .order_by(User.id)
    )
    return [(SignupRow(s, u), role) for s, u, role in rows.all()]


async def _active_group(session: AsyncSession, cohort: Cohort, group_id: int | None) -> Group:
    group = await session.get(Group, group_id) if group_id is not None else None
    if group is None or group.cohort_id != cohort.id or group.status != GroupStatus.ACTIVE:
        raise NotFound("That group is not one of this cohort's groups; reload the page.")
    return group


async def groups_of_signup(session: AsyncSession, signup_id: int) -> list[tuple[Group, str]]:
    rows = await session.execute(
        select(Group, GroupMember.role)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.signup_id == signup_id, Group.status == GroupStatus.ACTIVE)
        .order_by(Group.number)
    )
    return [(g, role) for g, role in rows.all()]


async def meetings_ahead(session: AsyncSession, group: Group) -> list[Meeting]:
    now = utcnow()
    return list(
        await session.scalars(
            select(Meeting)
            .where(
                Meeting.group_id == group.id,
                Meeting.status == "scheduled",
                Meeting.ends_at > now,
            )
            .order_by(Meeting.number)
        )
    )


def _weekly(meetings: list[Meeting], zone: str | None) -> str:
    first = meetings[0].starts_at.astimezone(zoneinfo.ZoneInfo(zone or "UTC"))
    return f"{first:%A}s {first:%H:%M} ({zone or 'UTC'})"


async def _check_time(
    session: AsyncSession, plan: Plan, group: Group, *, soft: bool = False
) -> list[Meeting]:
    """Every meeting ahead of `group` must fit the person's availability."""
    ahead = await meetings_ahead(session, group)
    who = plan.person.user.display_name
    if not ahead:
        plan.problems.append(f"{group.name} has no meetings left to join.")
        return ahead
    minutes = plan.cohort.meeting_minutes
    fit = WeeklyFit(plan.person.signup)
    missed = [m for m in ahead if not fit.covers(m.starts_at, minutes)]
    if missed:
        text = (
            f"{who} cannot make {plural(len(missed), 'meeting')} of {group.name} "
            f"({_weekly(ahead, plan.person.signup.timezone)}) by their availability; "
            "ask them to widen it first, or choose a group at a time they can make."
        )
        (plan.warnings if soft else plan.problems).append(text)
    return ahead


async def _participants(session: AsyncSession, group: Group) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(GroupMember)
            .where(GroupMember.group_id == group.id, GroupMember.role == Role.PARTICIPANT)
        )
        or 0
    )


async def _check_room(session: AsyncSession, plan: Plan, group: Group) -> None:
    count = await _participants(session, group)
    if count >= plan.cohort.max_group_size:
        plan.problems.append(
            f"{group.name} is full ({count} of at most {plan.cohort.max_group_size} "
            "participants); choose another group, or raise the cohort's maximum first."
        )


async def _check_leaving(session: AsyncSession, plan: Plan, group: Group) -> None:
    left = await _participants(session, group) - 1
    if left < plan.cohort.min_group_size:
        plan.warnings.append(
            f"{group.name} will have {plural(left, 'participant')}, fewer than the cohort's "
            f"minimum of {plan.cohort.min_group_size}."
        )


async def _facilitator_of(session: AsyncSession, group: Group) -> SignupRow | None:
    return next(
        (row for row, role in await _member_rows(session, group) if role == Role.FACILITATOR),
        None,
    )


def _token(*parts: object) -> str:
    text = json.dumps(parts, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


async def plan(session: AsyncSession, *, cohort: Cohort, ask: Ask) -> Plan:
    """What `ask` would do, and whether it may (see the module's docstring)."""
    if cohort.status != CohortStatus.RUNNING:
        raise Conflict(
            f"{cohort.name} is {cohort.status}: only a running cohort's groups are changed "
            "here (before approval, edit the grouping preview)."
        )
    if ask.action not in ACTIONS:
        raise Invalid(f"Unknown change {ask.action!r}; choose one from the page.")
    signup = await session.get(Signup, ask.signup_id)
    if signup is None or signup.cohort_id != cohort.id:
        raise NotFound("That person is not in this cohort; reload the page.")
    user = await session.get(User, signup.user_id)
    assert user is not None
    result = Plan(ask=ask, cohort=cohort, person=SignupRow(signup, user))
    groups = await groups_of_signup(session, signup.id)
    led = [g for g, role in groups if role == Role.FACILITATOR]
    member_of = [g for g, role in groups if role == Role.PARTICIPANT]
    state: list[object] = [signup.status, [(g.id, role) for g, role in groups]]
    who = user.display_name
    if ask.action in (ADD, MOVE, REMOVE):
        if signup.role != Role.PARTICIPANT:
            raise Invalid(
                f"{who} is a facilitator; change who leads a group with 'Make facilitator'."
            )
        if ask.action == ADD:
            if member_of:
                result.problems.append(
                    f"{who} is already in {member_of[0].name}; move them instead."
                )
            elif signup.status not in GROUPABLE:
                result.problems.append(
                    f"{who} is {signup.status}, not waiting for a group; they enroll again first."
                )
        elif not member_of:
            result.problems.append(f"{who} is in no group now; add them to one instead.")
        else:
            result.source = member_of[0]
        if ask.action in (ADD, MOVE):
            result.target = await _active_group(session, cohort, ask.group_id)
            if result.source is not None and result.target.id == result.source.id:
                result.problems.append(f"{who} is already in {result.target.name}.")
        if result.target is not None and not result.problems:
            await _check_room(session, result, result.target)
            await _check_time(session, result, result.target)
        if result.source is not None:
            await _check_leaving(session, result, result.source)
    else:
        result.target = await _active_group(session, cohort, ask.group_id)
        result.replaced = await _facilitator_of(session, result.target)
        state.append(result.replaced.signup.id if result.replaced else None)
        if signup.role != Role.FACILITATOR:
            raise Invalid(f"{who} signed up as a participant; only facilitators lead a group.")
        if signup.approved_at is None:
            result.problems.append(f"{who} is not approved as a facilitator yet; approve first.")
        if signup.status in (SignupStatus.WITHDRAWN, SignupStatus.DEFERRED):
            result.problems.append(f"{who} is {signup.status} from this cohort.")
        if ask.action == FACILITATOR:
            if result.replaced and result.replaced.signup.id == signup.id:
                result.problems.append(f"{who} already leads {result.target.name}.")
            elif len(led) >= signup.max_groups:
                result.problems.append(
                    f"{who} already leads {', '.join(g.name for g in led)} and offered to lead "
                    f"{plural(signup.max_groups, 'group')}; free one first."
                )
            else:
                ahead = await _check_time(session, result, result.target)
                await _check_clash(session, result, led, ahead)
        else:
            await _plan_substitute(session, result, led)
            state.append(result.meeting.substitute_signup_id if result.meeting else None)
    result.token = _token(*state)
    _describe(result)
    return result


async def _plan_substitute(session: AsyncSession, result: Plan, led: list[Group]) -> None:
    assert result.target is not None
    who = result.person.user.display_name
    meeting = await session.scalar(
        select(Meeting).where(
            Meeting.group_id == result.target.id, Meeting.number == result.ask.meeting_number
        )
    )
    if meeting is None:
        raise NotFound(f"{result.target.name} has no meeting {result.ask.meeting_number}.")
    result.meeting = meeting
    if meeting.status != "scheduled" or meeting.ends_at <= utcnow():
        result.problems.append(f"Meeting {meeting.number} is over or cancelled.")
        return
    if result.ask.action == UNSUBSTITUTE:
        if meeting.substitute_signup_id != result.person.signup.id:
            result.problems.append(f"{who} is not standing in for meeting {meeting.number}.")
        return
    if result.replaced and result.replaced.signup.id == result.person.signup.id:
        result.problems.append(f"{who} leads {result.target.name}; choose someone else.")
        return
    if meeting.substitute_signup_id == result.person.signup.id:
        result.problems.append(f"{who} already stands in for meeting {meeting.number}.")
        return
    if meeting.substitute_signup_id is not None:
        dropped = await session.get(Signup, meeting.substitute_signup_id)
        dropped_user = await session.get(User, dropped.user_id) if dropped else None
        if dropped is not None and dropped_user is not None:
            result.dropped = SignupRow(dropped, dropped_user)
    if await _check_clash(session, result, led, [meeting]):
        return
    if not can_make(result.person.signup, meeting.starts_at, result.cohort.meeting_minutes):
        result.warnings.append(
            f"{who}'s availability does not cover that meeting; make sure they agreed."
        )


async def _check_clash(
    session: AsyncSession, result: Plan, led: list[Group], meetings: list[Meeting]
) -> bool:
    """A facilitator cannot take on a meeting at the time of one they already lead (their
    own groups' meetings, or one they stand in for). True when there is a clash."""
    if not meetings:
        return False
    own = (Meeting.group_id.in_([g.id for g in led] or [-1])) | (
        Meeting.substitute_signup_id == result.person.signup.id
    )
    theirs = list(
        await session.scalars(
            select(Meeting).where(
                own,
                Meeting.status == "scheduled",
                Meeting.ends_at > utcnow(),
                Meeting.group_id != meetings[0].group_id,
            )
        )
    )
    for m in meetings:
        for other in theirs:
            if other.starts_at < m.ends_at and other.ends_at > m.starts_at:
                group = await session.get(Group, other.group_id)
                name = group.name if group else "another group"
                result.problems.append(
                    f"{result.person.user.display_name} already leads a meeting at that time "
                    f"({name}, meeting {other.number}, {other.starts_at:%a %d %b %H:%M} UTC)."
                )
                return True
    return False


def _describe(p: Plan) -> None:
    who = p.person.user.display_name
    told = "is told (e-mail, and Discord when linked, as their preferences allow)"
    if p.ask.action == ADD and p.target:
        p.effects += [
            f"{who} joins {p.target.name} and {told}: the group, its time in their zone and "
            "place, and reminders for the meetings ahead.",
            f"{p.target.name}'s facilitator is told.",
            f"Calendar invitations for {p.target.name}'s meetings ahead include {who}.",
            f"{who} gets access to {p.target.name}'s Discord channels.",
        ]
    elif p.ask.action == MOVE and p.source and p.target:
        p.effects += [
            f"{who} leaves {p.source.name} for {p.target.name} and {told}.",
            f"The facilitators of {p.source.name} and {p.target.name} are told.",
            f"Calendar invitations: {who} is taken off {p.source.name}'s meetings ahead and "
            f"invited to {p.target.name}'s; reminders follow.",
            f"Discord: access to {p.source.name}'s channels goes, {p.target.name}'s comes.",
        ]
    elif p.ask.action == REMOVE and p.source:
        p.effects += [
            f"{who} leaves {p.source.name} and {told}, with their options (another group, "
            "the next cohort).",
            f"{p.source.name}'s facilitator is told.",
            f"Calendar invitations and reminders for {p.source.name} stop for {who}; "
            "their Discord access to the group's channels goes.",
            f"{who} stays enrolled (unplaced): they can join a group with room later.",
        ]
    elif p.ask.action == FACILITATOR and p.target:
        old = p.replaced.user.display_name if p.replaced else None
        p.effects += [
            f"{who} leads {p.target.name} from now on"
            + (f", instead of {old} (who is told and leaves the group)." if old else "."),
            f"{p.target.name}'s members are told; {who} gets the group message and reminders.",
            "Calendar invitations and Discord access follow.",
        ]
    elif p.meeting is not None and p.target:
        if p.ask.action == SUBSTITUTE:
            p.effects.append(
                f"{who} stands in for meeting {p.meeting.number} of {p.target.name}"
                + (f" (for {p.replaced.user.display_name})" if p.replaced else "")
                + "; the group, its facilitator and they are told, and the meeting's "
                "calendar invitation includes them."
            )
            if p.dropped is not None:
                p.effects.append(
                    f"{p.dropped.user.display_name}, the stand-in until now, no longer stands "
                    "in: they are told, and taken off that meeting's invitation, and their "
                    "stand-in access to the group's Discord channels ends."
                )
        else:
            p.effects.append(
                f"{who} no longer stands in for meeting {p.meeting.number}; they and the "
                "group are told."
            )
    p.effects.append("The change is written in the cohort's change log.")
