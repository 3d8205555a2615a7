"""A participant's own changes in a running cohort (switch, guest visit, defer, leave),
and the facilitator's answer to a switch request; the forms live on the person's cohort
page (/cohorts/{id}) and the group page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from lens.auth.deps import CurrentUser, load_user
from lens.cohorts.models import Cohort, Group, Signup, SignupStatus
from lens.cohorts.service import get_cohort, get_signup, withdraw
from lens.db.engine import unit_of_work
from lens.errors import Invalid, LensError, NotFound
from lens.meetings.service import facilitator_user_ids
from lens.scheduling import selfservice
from lens.scheduling.pages import status_page  # the page these forms are on
from lens.users.models import User
from lens.web.state import get_lens
from lens.web.templating import render_fragment

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])

Action = Callable[[AsyncSession, Cohort, Signup], Awaitable[str]]


def _number(value: str, what: str) -> int:
    value = value.strip()
    if not value.isdigit() or len(value) > 12:
        raise Invalid(f"Choose {what} from the list.")
    return int(value)


async def _act(request: Request, cohort_id: int, user: User, action: Action) -> Response:
    """Run the person's change; a refusal shows their page with the reason, nothing done."""
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            cohort = await get_cohort(session, cohort_id)
            signup = await get_signup(session, cohort=cohort, user=user)
            if signup is None or signup.status == SignupStatus.DRAFT:
                raise NotFound("You are not enrolled in this cohort.")
            done = await action(session, cohort, signup)
    except LensError as exc:
        return await status_page(
            request, cohort_id, user, status_code=exc.status_code, error=exc.message
        )
    lens = get_lens(request)
    if lens.runner is not None:
        lens.runner.wake()
    target = f"/cohorts/{cohort_id}?saved={done}"
    if done == "deferred":
        target = "/enroll?deferred=1"
    return RedirectResponse(target, status_code=303)


@router.post("/cohorts/{cohort_id}/switch")
async def switch_form(
    request: Request, cohort_id: int, user: CurrentUser, group: Annotated[str, Form()] = ""
) -> Response:
    async def act(session: AsyncSession, cohort: Cohort, signup: Signup) -> str:
        return await selfservice.switch(
            session, cohort=cohort, signup=signup, user=user, group_id=_number(group, "a group")
        )

    return await _act(request, cohort_id, user, act)


@router.post("/cohorts/{cohort_id}/switch/withdraw")
async def withdraw_switch_form(request: Request, cohort_id: int, user: CurrentUser) -> Response:
    async def act(session: AsyncSession, cohort: Cohort, signup: Signup) -> str:
        await selfservice.withdraw_switch(session, signup=signup)
        return "request_withdrawn"

    return await _act(request, cohort_id, user, act)


@router.post("/cohorts/{cohort_id}/visit")
async def visit_form(
    request: Request,
    cohort_id: int,
    user: CurrentUser,
    instead_of: Annotated[str, Form()] = "",
    meeting: Annotated[str, Form()] = "",
) -> Response:
    async def act(session: AsyncSession, cohort: Cohort, signup: Signup) -> str:
        await selfservice.visit(
            session,
            cohort=cohort,
            signup=signup,
            user=user,
            meeting_number=_number(instead_of, "the meeting you cannot make"),
            meeting_id=_number(meeting, "the meeting to visit"),
        )
        return "visit"

    return await _act(request, cohort_id, user, act)


@router.post("/cohorts/{cohort_id}/visit/{guest_id}/cancel")
async def cancel_visit_form(
    request: Request, cohort_id: int, guest_id: int, user: CurrentUser
) -> Response:
    async def act(session: AsyncSession, cohort: Cohort, signup: Signup) -> str:
        await selfservice.cancel_visit(session, signup=signup, user=user, guest_id=guest_id)
        return "visit_cancelled"

    return await _act(request, cohort_id, user, act)


@router.post("/cohorts/{cohort_id}/defer")
async def defer_form(
    request: Request,
    cohort_id: int,
    user: CurrentUser,
    to: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    async def act(session: AsyncSession, cohort: Cohort, signup: Signup) -> str:
        if confirm != "yes":
            raise Invalid("Tick the box to confirm that you want to move to the later cohort.")
        await selfservice.defer(
            session,
            cohort=cohort,
            signup=signup,
            user=user,
            to_cohort_id=_number(to, "the cohort"),
        )
        return "deferred"

    return await _act(request, cohort_id, user, act)


@router.post("/cohorts/{cohort_id}/leave")
async def leave_form(
    request: Request, cohort_id: int, user: CurrentUser, confirm: Annotated[str, Form()] = ""
) -> Response:
    async def act(session: AsyncSession, cohort: Cohort, signup: Signup) -> str:
        if confirm != "yes":
            raise Invalid("Tick the box to confirm that you want to leave the cohort.")
        if signup.status == SignupStatus.GROUPED:
            await selfservice.withdraw_running(session, cohort=cohort, signup=signup, user=user)
        else:
            await withdraw(session, cohort=cohort, signup=signup)
        return "left"

    return await _act(request, cohort_id, user, act)


# -- the group's facilitator answers a switch request -------------------------------------


@router.post("/groups/{group_id}/switch-requests/{request_id}")
async def decide_form(
    request: Request,
    group_id: int,
    request_id: int,
    user: CurrentUser,
    decision: Annotated[str, Form()] = "",
) -> Response:
    if decision not in ("approve", "refuse"):
        raise Invalid("Choose to accept or decline the request.")
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        decided = await selfservice.decide_switch(
            session, request_id=request_id, approve=decision == "approve", by=user
        )
        if decided.to_group_id != group_id:
            raise NotFound("That request is not for this group.")
    lens = get_lens(request)
    if lens.runner is not None:
        lens.runner.wake()
    return RedirectResponse(
        f"/groups/{group_id}?switch={decision}#switch-requests", status_code=303
    )


async def switch_requests_panel(
    request: Request, session: AsyncSession, group: Group
) -> Markup | None:
    """On the group page, for its facilitator and admins: who asks to join."""
    viewer: User | None = getattr(request.state, "user", None)
    if viewer is None or not (
        viewer.is_admin or viewer.id in await facilitator_user_ids(session, group_id=group.id)
    ):
        return None
    pending = await selfservice.switch_requests_for(session, group=group)
    if not pending:
        return None
    return render_fragment(
        request,
        "cohorts/switch_requests_panel.html",
        {"group": group, "pending": pending, "decided": request.query_params.get("switch")},
    )
