"""A running cohort's groups for the admin: who is where, when and where they meet,
the problems that are real, and changes (add, move, remove, swap or stand-in
facilitator) reviewed with their consequences before they are confirmed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from lens.auth.deps import AdminUser, load_user
from lens.cohorts import audit
from lens.cohorts.availability import DAY_NAMES
from lens.cohorts.models import Cohort, GroupStatus, Role
from lens.cohorts.service import get_cohort
from lens.db.engine import unit_of_work
from lens.errors import Invalid, LensError
from lens.meetings.models import Meeting
from lens.scheduling import changes, service
from lens.scheduling.algorithm import Tier
from lens.scheduling.algorithm.check import slot_label
from lens.users.models import User
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])


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
        facilitators = [
            row
            for row in (await service.load_problem(session, cohort)).rows.values()
            if row.signup.role == Role.FACILITATOR
        ]
    leads = {g.facilitator.row.signup.id: g.group.name for g in preview.groups if g.facilitator}
    everyone_facilitating = [
        *[g.facilitator.row for g in preview.groups if g.facilitator],
        *facilitators,
    ]
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
            "leads": leads,
            "facilitators": list({r.signup.id: r for r in everyone_facilitating}.values()),
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
