"""A running cohort's groups for the admin: who is where, when and where they meet,
the problems that are real, and changes (add, move, remove, swap or stand-in
facilitator) reviewed with their consequences before they are confirmed."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from lens.auth.deps import AdminUser, load_user
from lens.cohorts import audit
from lens.cohorts.availability import DAY_NAMES
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
from lens.cohorts.service import get_cohort
from lens.db.base import utcnow
from lens.db.engine import unit_of_work
from lens.errors import Invalid, LensError, NotFound
from lens.meetings.models import Meeting
from lens.meetings.service import can_make
from lens.scheduling import changes, service
from lens.scheduling.algorithm import Tier
from lens.scheduling.algorithm.check import slot_label
from lens.scheduling.change_plan import groups_of_signup, meetings_ahead, plural
from lens.users.models import User
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])


@dataclass(frozen=True)
class Choice:
    """One line of a choice page (grouping preview and running cohort alike)."""

    value: str
    label: str
    note: str  # what the admin should know: a time they cannot make, a full group
    bad: bool = False


async def running_page(
    request: Request, cohort: Cohort, *, status_code: int = 200, **extra: object
) -> Response:
    """The approved groups (the grouping page of a running or finished cohort)."""
    async with get_lens(request).sessionmaker() as session:
        preview = await service.get_preview(session, cohort=cohort, status=GroupStatus.ACTIVE)
        meetings: dict[int, list[Meeting]] = {g.group.id: [] for g in preview.groups}
        if meetings:
            for meeting in await session.scalars(
                select(Meeting)
                .where(Meeting.group_id.in_(list(meetings)), Meeting.status == "scheduled")
                .order_by(Meeting.number)
            ):
                meetings[meeting.group_id].append(meeting)
        log = await audit.changes(session, cohort_id=cohort.id, limit=50)
        actors = {
            u.id: u.display_name
            for u in await session.scalars(
                select(User).where(User.id.in_({e.actor_id for e in log if e.actor_id}))
            )
        }
    peak = max([*preview.heat_participants, *preview.heat_facilitators, 1])
    person = request.query_params.get("person", "")
    return render(
        request,
        "admin/running.html",
        {
            "cohort": cohort,
            "preview": preview,
            "meetings": meetings,
            "log": log,
            "actors": actors,
            "utc": slot_label,
            "days": DAY_NAMES,
            "peak": peak,
            "AVAILABLE": Tier.AVAILABLE,
            "person": int(person) if person.isdigit() else None,
            "message": request.query_params.get("done"),
            **extra,
        },
        status_code=status_code,
    )


def _int(value: str, what: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 12:
        raise Invalid(f"{what} must be chosen from the list; reload the page.")
    return int(value)


def _ask(action: str, signup: str, group: str, meeting: str) -> changes.Ask:
    if action not in changes.ACTIONS:
        raise Invalid("Choose a change from the page (add, move, remove, facilitator).")
    signup_id = _int(signup, "The person")
    if signup_id is None:
        raise Invalid("Choose the person to change.")
    group_id = _int(group, "The group")
    if action != changes.REMOVE and group_id is None:
        raise Invalid("Choose the group.")
    number = _int(meeting, "The meeting")
    if action in (changes.SUBSTITUTE, changes.UNSUBSTITUTE) and number is None:
        raise Invalid("Choose the meeting.")
    return changes.Ask(action, signup_id, group_id, number)


async def _review(
    request: Request, cohort_id: int, ask: changes.Ask, *, status_code: int = 200, **extra: object
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        cohort = await get_cohort(session, cohort_id)
        plan = await changes.plan(session, cohort=cohort, ask=ask)
    return render(
        request,
        "admin/change_review.html",
        {"cohort": cohort, "plan": plan, **extra},
        status_code=status_code,
    )


async def _group_choices(
    session: AsyncSession, cohort: Cohort, signup: Signup, *, leaving: int | None
) -> list[Choice]:
    """The cohort's groups for one person: when (UTC and their zone), how full, who leads,
    and whether they can make the next meeting."""
    groups = list(
        await session.scalars(
            select(Group)
            .where(Group.cohort_id == cohort.id, Group.status == GroupStatus.ACTIVE)
            .order_by(Group.number)
        )
    )
    ids = [g.id for g in groups] or [-1]
    sizes = dict(
        (
            await session.execute(
                select(GroupMember.group_id, func.count())
                .where(GroupMember.group_id.in_(ids), GroupMember.role == Role.PARTICIPANT)
                .group_by(GroupMember.group_id)
            )
        ).all()
    )
    leaders: dict[int, str] = {
        group_id: user.display_name
        for group_id, user in await session.execute(
            select(GroupMember.group_id, User)
            .join(Signup, Signup.id == GroupMember.signup_id)
            .join(User, User.id == Signup.user_id)
            .where(GroupMember.group_id.in_(ids), GroupMember.role == Role.FACILITATOR)
        )
    }
    upcoming: dict[int, Meeting] = {}
    for meeting in await session.scalars(
        select(Meeting)
        .where(
            Meeting.group_id.in_(ids),
            Meeting.status == "scheduled",
            Meeting.ends_at > utcnow(),
        )
        .order_by(Meeting.starts_at.desc())
    ):
        upcoming[meeting.group_id] = meeting  # the earliest ahead wins (descending order)
    zone = signup.timezone or "UTC"
    choices = []
    for g in groups:
        if g.id == leaving:
            continue
        n = int(sizes.get(g.id, 0))
        nxt = upcoming.get(g.id)
        label = f"{g.name} · {slot_label(g.start_slot)}"
        if nxt is not None:
            local = nxt.starts_at.astimezone(zoneinfo.ZoneInfo(zone))
            label += f" ({local:%A}s {local:%H:%M} in {zone})"
        label += f" · {plural(n, 'participant')} · {leaders.get(g.id) or 'no facilitator'}"
        if nxt is None:
            note, bad = "no meetings left", True
        elif n >= cohort.max_group_size:
            note, bad = f"full ({n} of {cohort.max_group_size})", True
        elif not can_make(signup, nxt.starts_at, cohort.meeting_minutes):
            note, bad = "cannot make this time", True
        else:
            note, bad = "can make it", False
        choices.append(Choice(str(g.id), label, note, bad))
    return choices


async def _facilitator_choices(
    session: AsyncSession, cohort: Cohort, group: Group, *, meeting: Meeting | None
) -> list[Choice]:
    """The cohort's approved facilitators for a group (or one of its meetings), with the
    groups each leads and how many they offered to lead."""
    rows = (
        await session.execute(
            select(Signup, User)
            .join(User, User.id == Signup.user_id)
            .where(
                Signup.cohort_id == cohort.id,
                Signup.role == Role.FACILITATOR,
                Signup.approved_at.is_not(None),
                Signup.status.not_in([SignupStatus.WITHDRAWN, SignupStatus.DEFERRED]),
            )
            .order_by(Signup.id)
        )
    ).all()
    leads: dict[int, list[str]] = {}
    for signup_id, number in (
        await session.execute(
            select(GroupMember.signup_id, Group.number)
            .join(Group, Group.id == GroupMember.group_id)
            .where(
                Group.cohort_id == cohort.id,
                Group.status == GroupStatus.ACTIVE,
                GroupMember.role == Role.FACILITATOR,
            )
            .order_by(Group.number)
        )
    ).all():
        leads.setdefault(signup_id, []).append(f"Group {number}")
    when = meeting.starts_at if meeting is not None else None
    if when is None:
        ahead = await meetings_ahead(session, group)
        when = ahead[0].starts_at if ahead else None
    choices = []
    for signup, user in rows:
        led = leads.get(signup.id, [])
        if group.name in led:
            continue  # leads this group already
        label = f"{user.display_name} · {'leads ' + ', '.join(led) if led else 'leads no group'}"
        label += f" · offered {plural(signup.max_groups, 'group')}"
        if meeting is None and len(led) >= signup.max_groups:
            note, bad = "leads as many groups as they offered", True
        elif when is not None and not can_make(signup, when, cohort.meeting_minutes):
            note, bad = "availability does not cover this time", True
        else:
            note, bad = "free at this time", False
        choices.append(Choice(str(signup.id), label, note, bad))
    return choices


@router.get("/admin/cohorts/{cohort_id}/changes/choose")
async def choose_page(
    request: Request,
    cohort_id: int,
    admin: AdminUser,
    action: str = "",
    signup: str = "",
    group: str = "",
    meeting: str = "",
) -> Response:
    """The first step of a change: choose the group (add, move), the facilitator (swap), or
    the meeting and then the stand-in; the review page comes next."""
    review = f"/admin/cohorts/{cohort_id}/changes/review"
    try:
        async with get_lens(request).sessionmaker() as session:
            cohort = await get_cohort(session, cohort_id)
            if cohort.status != CohortStatus.RUNNING:
                raise Invalid(f"{cohort.name} is {cohort.status}: its groups are not changed here.")
            if action in (changes.ADD, changes.MOVE):
                person_id = _int(signup, "The person")
                person = await session.get(Signup, person_id or 0)
                if person is None or person.cohort_id != cohort.id:
                    raise NotFound("That person is not in this cohort; reload the page.")
                user = await session.get(User, person.user_id)
                assert user is not None
                mine = await groups_of_signup(session, person.id)
                leaving = next((g.id for g, role in mine if role == Role.PARTICIPANT), None)
                title = f"{'Move' if action == changes.MOVE else 'Add'} {user.display_name}"
                lead_in = f"Choose the group; times are in UTC and {person.timezone or 'UTC'}."
                field, hidden = "group", {"action": action, "signup": str(person.id)}
                choices = await _group_choices(session, cohort, person, leaving=leaving)
                target = review
            elif action in (changes.FACILITATOR, changes.SUBSTITUTE):
                group_id = _int(group, "The group")
                the_group = await session.get(Group, group_id or 0)
                if the_group is None or the_group.cohort_id != cohort.id:
                    raise NotFound("That group is not one of this cohort's; reload the page.")
                hidden = {"action": action, "group": str(the_group.id)}
                number = _int(meeting, "The meeting")
                target = review
                if action == changes.SUBSTITUTE and number is None:
                    title = f"Stand-in for {the_group.name}: which meeting?"
                    lead_in = "Choose the meeting; the stand-in comes next."
                    field, target = "meeting", request.url.path
                    choices = [
                        Choice(
                            str(m.number),
                            f"Meeting {m.number}, {m.starts_at:%a %d %b %H:%M} UTC",
                            "has a stand-in" if m.substitute_signup_id else "",
                        )
                        for m in await meetings_ahead(session, the_group)
                    ]
                else:
                    chosen = None
                    if number is not None:
                        hidden["meeting"] = str(number)
                        chosen = next(
                            (
                                m
                                for m in await meetings_ahead(session, the_group)
                                if m.number == number
                            ),
                            None,
                        )
                        if chosen is None:
                            raise NotFound(f"{the_group.name} has no meeting {number} ahead.")
                    title = (
                        f"New facilitator for {the_group.name}"
                        if chosen is None
                        else f"Stand-in for {the_group.name}, meeting {chosen.number}"
                    )
                    lead_in = "Choose who; their groups and the groups they offered are shown."
                    field = "signup"
                    choices = await _facilitator_choices(session, cohort, the_group, meeting=chosen)
            else:
                raise Invalid("Choose a change from the page (add, move, facilitator, stand-in).")
    except LensError as exc:
        async with get_lens(request).sessionmaker() as session:
            cohort = await get_cohort(session, cohort_id)
        return await running_page(request, cohort, status_code=exc.status_code, error=exc.message)
    return render(
        request,
        "admin/grouping_choose.html",
        {
            "cohort": cohort,
            "title": title,
            "lead_in": lead_in,
            "action": target,
            "field": field,
            "hidden": hidden,
            "choices": choices,
            "current": "",
            "review": "Next" if target != review else "Review the change…",
        },
    )


@router.get("/admin/cohorts/{cohort_id}/changes/review")
async def review_page(
    request: Request,
    cohort_id: int,
    admin: AdminUser,
    action: str = "",
    signup: str = "",
    group: str = "",
    meeting: str = "",
) -> Response:
    try:
        ask = _ask(action, signup, group, meeting)
        return await _review(request, cohort_id, ask)
    except LensError as exc:
        async with get_lens(request).sessionmaker() as session:
            cohort = await get_cohort(session, cohort_id)
        return await running_page(request, cohort, status_code=exc.status_code, error=exc.message)


@router.post("/admin/cohorts/{cohort_id}/changes")
async def confirm_form(
    request: Request,
    cohort_id: int,
    admin: AdminUser,
    action: Annotated[str, Form()] = "",
    signup: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
    meeting: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        ask = _ask(action, signup, group, meeting)
    except LensError as exc:
        async with get_lens(request).sessionmaker() as session:
            cohort = await get_cohort(session, cohort_id)
        return await running_page(request, cohort, status_code=exc.status_code, error=exc.message)
    if len(reason) > 2000:
        return await _review(
            request,
            cohort_id,
            ask,
            status_code=422,
            error="Keep the reason under 2,000 characters.",
        )
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            await changes.apply(
                session, cohort_id=cohort_id, ask=ask, token=token, actor=admin, reason=reason
            )
    except LensError as exc:
        # Shown again as it is now, with why nothing changed; the reason typed is kept.
        try:
            return await _review(
                request,
                cohort_id,
                ask,
                status_code=exc.status_code,
                error=exc.message,
                reason=reason,
            )
        except LensError:
            async with get_lens(request).sessionmaker() as session:
                cohort = await get_cohort(session, cohort_id)
            return await running_page(
                request, cohort, status_code=exc.status_code, error=exc.message
            )
    lens = get_lens(request)
    if lens.runner is not None:
        lens.runner.wake()
    return RedirectResponse(f"/admin/cohorts/{cohort_id}/grouping?done=change", status_code=303)
