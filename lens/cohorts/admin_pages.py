"""The admin's cohort pages: the list, creating and editing a cohort, its status, its
signups (approving facilitators). Features above add their parts to a cohort's page
(the groups in Discord) through lens/web/panels.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from lens.auth.deps import AdminUser, load_user
from lens.cohorts.models import Cohort, CohortStatus, Signup
from lens.cohorts.service import (
    MEETING_MINUTES,
    REASON_TEXT,
    CohortFields,
    accepts_signups,
    approve_facilitator,
    create_cohort,
    get_cohort,
    list_cohorts,
    list_signups,
    set_status,
    update_cohort,
)
from lens.content.deps import course_titles
from lens.db.engine import unit_of_work
from lens.errors import Invalid, LensError, NotFound
from lens.web.panels import render_panels
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])


def _fields(form: dict[str, str]) -> CohortFields:
    """Cohort fields from a form, or Invalid naming every field to fix."""
    problems = []

    def number(name: str, label: str, default: int) -> int:
        raw = form.get(name, "").strip()
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError:
            problems.append(f"{label} must be a whole number, not {raw!r}.")
            return default

    start = None
    try:
        start = date.fromisoformat(form.get("start_date", "").strip())
    except ValueError:
        problems.append("Give the start date (YYYY-MM-DD).")
    deadline = None
    if form.get("enrollment_deadline", "").strip():
        try:
            day = date.fromisoformat(form["enrollment_deadline"].strip())
            deadline = datetime.combine(day, time(23, 59, 59), UTC)
        except ValueError:
            problems.append("The enrollment deadline must be a date (YYYY-MM-DD).")
    fields = CohortFields(
        course_slug=form.get("course_slug", "").strip(),
        name=form.get("name", ""),
        start_date=start or date.today(),
        meetings=number("meetings", "The number of meetings", 8),
        meeting_minutes=number("meeting_minutes", "The meeting length", 90),
        min_group_size=number("min_group_size", "The smallest group size", 4),
        max_group_size=number("max_group_size", "The largest group size", 8),
        needs_facilitator=form.get("needs_facilitator") == "true",
        switch_needs_approval=form.get("switch_needs_approval") == "true",
        completion_meetings=number("completion_meetings", "Meetings to attend", -1)
        if form.get("completion_meetings", "").strip()
        else None,
        completion_modules=form.get("completion_modules", "").strip() or None,
        enrollment_deadline=deadline,
    )
    if problems:
        raise Invalid(" ".join(problems))
    return fields


def _cohort_form_values(cohort: Cohort | None) -> dict[str, str]:
    if cohort is None:
        return {
            "meetings": "8",
            "meeting_minutes": "90",
            "min_group_size": "4",
            "max_group_size": "8",
            "needs_facilitator": "true",
        }
    return {
        "course_slug": cohort.course_slug,
        "name": cohort.name,
        "start_date": cohort.start_date.isoformat(),
        "meetings": str(cohort.meetings),
        "meeting_minutes": str(cohort.meeting_minutes),
        "min_group_size": str(cohort.min_group_size),
        "max_group_size": str(cohort.max_group_size),
        "needs_facilitator": "true" if cohort.needs_facilitator else "",
        "switch_needs_approval": "true" if cohort.switch_needs_approval else "",
        "completion_meetings": ""
        if cohort.completion_meetings is None
        else str(cohort.completion_meetings),
        "completion_modules": cohort.completion_modules or "",
        "enrollment_deadline": cohort.enrollment_deadline.date().isoformat()
        if cohort.enrollment_deadline
        else "",
    }


async def _cohorts_page(request: Request, *, status_code: int = 200, **extra: object) -> Response:
    async with get_lens(request).sessionmaker() as session:
        rows = await list_cohorts(session)
    context = {
        "rows": rows,
        "courses": course_titles(request),
        "lengths": MEETING_MINUTES,
        "form": _cohort_form_values(None),
        **extra,
    }
    return render(request, "admin/cohorts.html", context, status_code=status_code)


@router.get("/admin/cohorts")
async def cohorts_page(request: Request, admin: AdminUser) -> Response:
    return await _cohorts_page(request)


@router.post("/admin/cohorts")
async def create_cohort_form(request: Request, admin: AdminUser) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            cohort = await create_cohort(
                session, _fields(form), courses=set(course_titles(request)) or None
            )
    except LensError as exc:
        return await _cohorts_page(
            request, status_code=exc.status_code, error=exc.message, form=form
        )
    return RedirectResponse(f"/admin/cohorts/{cohort.id}?created=1", status_code=303)


async def _cohort_page(
    request: Request, cohort_id: int, *, status_code: int = 200, **extra: object
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        cohort = await get_cohort(session, cohort_id)
        signups = await list_signups(session, cohort=cohort)
        # What features above add here (the groups in Discord).
        panels = await render_panels(request, "admin.cohort", session, cohort)
    context = {
        "cohort": cohort,
        "signups": signups,
        "panels": panels,
        "courses": course_titles(request),
        "lengths": MEETING_MINUTES,
        "form": _cohort_form_values(cohort),
        "statuses": list(CohortStatus),
        "accepts": accepts_signups(cohort),
        "reasons": REASON_TEXT,
        **extra,
    }
    return render(request, "admin/cohort.html", context, status_code=status_code)


@router.get("/admin/cohorts/{cohort_id}")
async def cohort_page(request: Request, cohort_id: int, admin: AdminUser) -> Response:
    return await _cohort_page(
        request,
        cohort_id,
        created=request.query_params.get("created"),
        saved=request.query_params.get("saved"),
    )


@router.post("/admin/cohorts/{cohort_id}")
async def edit_cohort_form(request: Request, cohort_id: int, admin: AdminUser) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            cohort = await get_cohort(session, cohort_id)
            await update_cohort(
                session, cohort, _fields(form), courses=set(course_titles(request)) or None
            )
    except LensError as exc:
        return await _cohort_page(
            request, cohort_id, status_code=exc.status_code, error=exc.message, form=form
        )
    return RedirectResponse(f"/admin/cohorts/{cohort_id}?saved=1", status_code=303)


@router.post("/admin/cohorts/{cohort_id}/status")
async def cohort_status_form(
    request: Request,
    cohort_id: int,
    admin: AdminUser,
    status: Annotated[str, Form()],
    confirm: Annotated[str, Form()] = "",
) -> Response:
    if status == CohortStatus.FINISHED and confirm != "yes":
        raise Invalid("Tick the box to confirm that the cohort is over: this cannot be undone.")
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort = await get_cohort(session, cohort_id)
        await set_status(session, cohort, status)
    return RedirectResponse(f"/admin/cohorts/{cohort_id}?saved=1", status_code=303)


@router.post("/admin/cohorts/{cohort_id}/signups/{signup_id}/approve")
async def approve_facilitator_form(
    request: Request, cohort_id: int, signup_id: int, admin: AdminUser
) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        signup = await session.get(Signup, signup_id)
        if signup is None or signup.cohort_id != cohort_id:
            raise NotFound("That signup is not in this cohort.")
        await approve_facilitator(session, signup=signup)
    return RedirectResponse(f"/admin/cohorts/{cohort_id}?saved=1#signups", status_code=303)
