"""Enrollment (the four-step wizard, withdrawing) and a person's groups. Thin: every rule
is in cohorts/service.py. The admin's cohort pages are in admin_pages.py; a person's
place after grouping is on lens/scheduling's status page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from lens.auth.deps import CurrentUser, OptionalUser, load_user
from lens.auth.email_change import request_email_change
from lens.cohorts.availability import DAY_NAMES, SLOTS, meeting_weeks
from lens.cohorts.groups import get_group_to_lead, list_my_groups
from lens.cohorts.models import Cohort, CohortStatus, Signup, SignupStatus
from lens.cohorts.service import (
    MAX_FACILITATOR_GROUPS,
    availability_of,
    can_change,
    choose_role,
    confirm_signup,
    get_cohort,
    get_signup,
    list_enrollable,
    set_availability,
    start_signup,
    withdraw,
)
from lens.content.deps import course_titles, loaded_content
from lens.db.base import utcnow
from lens.db.engine import unit_of_work
from lens.errors import Invalid, LensError, NotFound
from lens.tutor.transcripts import list_transcripts
from lens.users.models import User
from lens.users.nicknames import request_nickname_push
from lens.users.service import check_nickname, check_timezone, timezones
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])

STEPS = ("profile", "role", "availability", "confirm")


# -- enrollment -------------------------------------------------------------------------


@router.get("/enroll")
async def enroll_index(request: Request, viewer: OptionalUser) -> Response:
    async with get_lens(request).sessionmaker() as session:
        cohorts = await list_enrollable(session)
        mine = (
            {c.id: await get_signup(session, cohort=c, user=viewer) for c in cohorts}
            if viewer
            else {}
        )
    if viewer and len(cohorts) == 1 and not request.query_params.get("withdrawn"):
        return RedirectResponse(f"/enroll/{cohorts[0].id}", status_code=303)
    return render(
        request,
        "cohorts/enroll_index.html",
        {"cohorts": cohorts, "mine": mine, "courses": course_titles(request)},
    )


async def _load(session: AsyncSession, cohort_id: int, user: User) -> tuple[Cohort, Signup, User]:
    cohort = await get_cohort(session, cohort_id)
    fresh = await session.get(User, user.id)
    assert fresh is not None
    signup = await start_signup(session, cohort=cohort, user=fresh)
    return cohort, signup, fresh


def _next_step(signup: Signup, user: User) -> str:
    if signup.status != SignupStatus.DRAFT:
        return "status"
    if user.terms_accepted_at is None or not user.email or not user.timezone:
        return "profile"
    sure, maybe = availability_of(signup)
    return "confirm" if (sure or maybe) else "role"


@router.get("/enroll/{cohort_id}")
async def enroll_start(request: Request, cohort_id: int, user: CurrentUser) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort, signup, fresh = await _load(session, cohort_id, user)
        step = _next_step(signup, fresh)
    if step == "status":
        return RedirectResponse(f"/cohorts/{cohort.id}", status_code=303)
    return RedirectResponse(f"/enroll/{cohort.id}/{step}", status_code=303)


def _wizard(
    request: Request,
    step: str,
    cohort: Cohort,
    signup: Signup,
    user: User,
    *,
    status_code: int = 200,
    **extra: object,
) -> Response:
    context = {
        "step": step,
        "steps": STEPS,
        "number": STEPS.index(step) + 1,
        "cohort": cohort,
        "signup": signup,
        "user": user,
        "course_title": course_titles(request).get(cohort.course_slug, cohort.course_slug),
        **extra,
    }
    return render(request, f"cohorts/enroll_{step}.html", context, status_code=status_code)


@router.get("/enroll/{cohort_id}/profile")
async def profile_step(request: Request, cohort_id: int, user: CurrentUser) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort, signup, fresh = await _load(session, cohort_id, user)
    return _wizard(request, "profile", cohort, signup, fresh, timezones=timezones())


@router.post("/enroll/{cohort_id}/profile")
async def save_profile_step(
    request: Request,
    cohort_id: int,
    user: CurrentUser,
    nickname: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "",
    terms: Annotated[bool, Form()] = False,
) -> Response:
    lens = get_lens(request)
    errors: list[str] = []
    async with unit_of_work(lens.sessionmaker) as session:
        cohort, signup, fresh = await _load(session, cohort_id, user)
        before = fresh.nickname
        try:
            fresh.nickname = check_nickname(nickname) or fresh.nickname
        except Invalid as exc:
            errors.append(exc.message)
        if fresh.nickname != before:
            await request_nickname_push(session, settings=lens.settings, user=fresh)
        if not fresh.nickname:
            errors.append("Choose a nickname: it is how your group will know you.")
        if timezone.strip():
            try:
                fresh.timezone = check_timezone(timezone)
                signup.timezone = signup.timezone or fresh.timezone
            except Invalid as exc:
                errors.append(exc.message)
        else:
            errors.append("Choose your time zone (type a city to search).")
        if not terms and fresh.terms_accepted_at is None:
            errors.append("Accept the terms to enroll.")
        elif terms and fresh.terms_accepted_at is None:
            fresh.terms_accepted_at = utcnow()
        sent = None
        if not fresh.email:
            if not email.strip():
                errors.append("Give an e-mail address: meeting invitations go there.")
            else:
                try:
                    sent = await request_email_change(
                        session,
                        user=fresh,
                        new_email=email,
                        sender=lens.email,
                        base_url=lens.settings.public_url,
                    )
                except LensError as exc:
                    errors.append(exc.message)
        if errors:
            # Keep what was typed; nothing valid is lost either (it is saved above).
            return _wizard(
                request,
                "profile",
                cohort,
                signup,
                fresh,
                status_code=422,
                timezones=timezones(),
                errors=errors,
                typed={"nickname": nickname, "email": email, "timezone": timezone},
            )
    if sent:
        return RedirectResponse(f"/enroll/{cohort.id}/role?email_sent={sent}", status_code=303)
    return RedirectResponse(f"/enroll/{cohort.id}/role", status_code=303)


@router.get("/enroll/{cohort_id}/role")
async def role_step(
    request: Request, cohort_id: int, user: CurrentUser, email_sent: str = ""
) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort, signup, fresh = await _load(session, cohort_id, user)
    return _wizard(
        request,
        "role",
        cohort,
        signup,
        fresh,
        email_sent=email_sent,
        max_facilitator_groups=MAX_FACILITATOR_GROUPS,
    )


@router.post("/enroll/{cohort_id}/role")
async def save_role_step(
    request: Request,
    cohort_id: int,
    user: CurrentUser,
    role: Annotated[str, Form()] = "",
    max_groups: Annotated[str, Form()] = "1",
) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort, signup, fresh = await _load(session, cohort_id, user)
        try:
            groups = int(max_groups) if max_groups.strip() else 1
        except ValueError:
            groups = 0
        try:
            await choose_role(session, cohort=cohort, signup=signup, role=role, max_groups=groups)
        except LensError as exc:
            return _wizard(
                request,
                "role",
                cohort,
                signup,
                fresh,
                status_code=exc.status_code,
                errors=[exc.message],
                max_facilitator_groups=MAX_FACILITATOR_GROUPS,
            )
    return RedirectResponse(f"/enroll/{cohort.id}/availability", status_code=303)


def _grid_context(cohort: Cohort, signup: Signup, user: User) -> dict[str, Any]:
    sure, maybe = availability_of(signup)
    weeks = meeting_weeks(cohort.start_date, cohort.meetings)
    return {
        "days": DAY_NAMES,
        "slots": SLOTS,
        "available": sorted(sure),
        "if_needed": sorted(maybe),
        "zone": signup.timezone or user.timezone or "",
        "timezones": timezones(),
        "first_week": weeks[0],
        "last_week": weeks[-1],
        "meeting_minutes": cohort.meeting_minutes,
    }


@router.get("/enroll/{cohort_id}/availability")
async def availability_step(request: Request, cohort_id: int, user: CurrentUser) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort, signup, fresh = await _load(session, cohort_id, user)
    if not can_change(cohort, signup):
        return RedirectResponse(f"/cohorts/{cohort.id}", status_code=303)
    return _wizard(
        request, "availability", cohort, signup, fresh, **_grid_context(cohort, signup, fresh)
    )


def _slot_list(value: str) -> list[str]:
    return [part for part in value.replace(" ", "").split(",") if part]


@router.post("/enroll/{cohort_id}/availability")
async def save_availability_step(
    request: Request,
    cohort_id: int,
    user: CurrentUser,
    timezone: Annotated[str, Form()] = "",
    available: Annotated[str, Form()] = "",
    if_needed: Annotated[str, Form()] = "",
) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort, signup, fresh = await _load(session, cohort_id, user)
        try:
            await set_availability(
                session,
                cohort=cohort,
                signup=signup,
                timezone=timezone,
                available=_slot_list(available),
                if_needed=_slot_list(if_needed),
            )
        except LensError as exc:
            context = _grid_context(cohort, signup, fresh)
            try:  # show the painting as it was sent, so nothing is lost
                context["available"] = sorted({int(s) for s in _slot_list(available)})
                context["if_needed"] = sorted({int(s) for s in _slot_list(if_needed)})
            except ValueError:
                pass
            context["zone"] = timezone
            return _wizard(
                request,
                "availability",
                cohort,
                signup,
                fresh,
                status_code=exc.status_code,
                errors=[exc.message],
                **context,
            )
        done = signup.status != SignupStatus.DRAFT
    if done:
        return RedirectResponse(f"/cohorts/{cohort.id}?saved=availability", status_code=303)
    return RedirectResponse(f"/enroll/{cohort.id}/confirm", status_code=303)


@router.get("/enroll/{cohort_id}/confirm")
async def confirm_step(request: Request, cohort_id: int, user: CurrentUser) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort, signup, fresh = await _load(session, cohort_id, user)
    sure, maybe = availability_of(signup)
    return _wizard(
        request,
        "confirm",
        cohort,
        signup,
        fresh,
        hours=(len(sure) / 2, len(maybe) / 2),
    )


@router.post("/enroll/{cohort_id}/confirm")
async def confirm(request: Request, cohort_id: int, user: CurrentUser) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort, signup, fresh = await _load(session, cohort_id, user)
        try:
            await confirm_signup(session, cohort=cohort, signup=signup, user=fresh)
        except LensError as exc:
            sure, maybe = availability_of(signup)
            return _wizard(
                request,
                "confirm",
                cohort,
                signup,
                fresh,
                status_code=exc.status_code,
                errors=[exc.message],
                hours=(len(sure) / 2, len(maybe) / 2),
            )
    return RedirectResponse(f"/cohorts/{cohort.id}?enrolled=1", status_code=303)


@router.post("/cohorts/{cohort_id}/withdraw")
async def withdraw_form(
    request: Request, cohort_id: int, user: CurrentUser, confirm: Annotated[str, Form()] = ""
) -> Response:
    if confirm != "yes":
        raise Invalid("Tick the box to confirm that you want to withdraw.")
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort = await get_cohort(session, cohort_id)
        signup = await get_signup(session, cohort=cohort, user=user)
        if signup is None:
            raise NotFound("You are not signed up for this cohort.")
        await withdraw(session, cohort=cohort, signup=signup)
    return RedirectResponse("/enroll?withdrawn=1", status_code=303)


# -- groups -----------------------------------------------------------------------------


@router.get("/groups")
async def my_groups(request: Request, user: CurrentUser) -> Response:
    async with get_lens(request).sessionmaker() as session:
        groups = await list_my_groups(session, user=user)
        signups = (
            await session.execute(
                select(Signup, Cohort)
                .join(Cohort, Cohort.id == Signup.cohort_id)
                .where(
                    Signup.user_id == user.id,
                    Signup.status.in_(
                        [SignupStatus.ENROLLED, SignupStatus.UNPLACED, SignupStatus.DEFERRED]
                    ),
                    Cohort.status != CohortStatus.FINISHED,
                )
                .order_by(Cohort.start_date)
            )
        ).all()
    return render(
        request,
        "cohorts/groups.html",
        {"groups": groups, "waiting": [(s, c) for s, c in signups]},
    )


@router.get("/groups/{group_id}/members/{signup_id}/transcripts")
async def member_transcripts(
    request: Request, group_id: int, signup_id: int, user: CurrentUser
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        access = await get_group_to_lead(session, group_id=group_id, viewer=user)
        member = next((r for r in access.participants if r.signup.id == signup_id), None)
        if member is None:
            raise NotFound("That person is not in this group.")
        transcripts = await list_transcripts(
            session, user_id=member.user.id, content=loaded_content(request)
        )
    return render(
        request,
        "account/transcripts.html",
        {"transcripts": transcripts, "member": member, "group": access.group},
    )
