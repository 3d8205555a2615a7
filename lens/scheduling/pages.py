"""The admin's grouping preview (run, inspect, edit with every rule re-checked, approve),
and a person's own place in a cohort: enrolled, grouped, or unplaced with the groups
they could still join."""

from __future__ import annotations

import zoneinfo
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from lens.auth.deps import AdminUser, CurrentUser, load_user
from lens.cohorts.availability import DAY_NAMES, local_time, meeting_weeks
from lens.cohorts.models import Cohort, CohortStatus, Group, GroupStatus, SignupStatus
from lens.cohorts.service import REASON_TEXT, availability_of, can_change, get_cohort, get_signup
from lens.content.deps import course_titles
from lens.db.engine import unit_of_work
from lens.errors import Invalid, LensError, NotFound
from lens.scheduling import algorithm as alg
from lens.scheduling import edits, selfservice, service
from lens.scheduling.algorithm import Tier
from lens.scheduling.algorithm.check import slot_label
from lens.scheduling.change_plan import plural
from lens.scheduling.joiners import group_of, join_group, openings
from lens.scheduling.running_pages import Choice, running_page
from lens.users.models import User
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])


async def _page(
    request: Request, cohort_id: int, *, status_code: int = 200, **extra: object
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        cohort = await get_cohort(session, cohort_id)
        approved = cohort.status in (CohortStatus.RUNNING, CohortStatus.FINISHED)
    if approved:  # its own session: SQLite has one writer, and a session takes the lock
        return await running_page(request, cohort, status_code=status_code, **extra)
    async with get_lens(request).sessionmaker() as session:
        preview = await service.get_preview(
            session, cohort=cohort, status=GroupStatus.ACTIVE if approved else GroupStatus.DRAFT
        )
    run = preview.run
    working = run is not None and run.status in ("queued", "running")
    peak = max([*preview.heat_participants, *preview.heat_facilitators, 1])
    context = {
        "cohort": cohort,
        "preview": preview,
        "run": run,
        "working": working,
        "approved": approved,
        "utc": slot_label,
        "days": DAY_NAMES,
        "peak": peak,
        "AVAILABLE": Tier.AVAILABLE,
        "message": request.query_params.get("done"),
        **extra,
    }
    response = render(request, "admin/grouping.html", context, status_code=status_code)
    if working:
        response.headers["Refresh"] = "2"  # the page follows the run until it is done
    return response


@router.get("/admin/cohorts/{cohort_id}/grouping")
async def grouping_page(request: Request, cohort_id: int, admin: AdminUser) -> Response:
    return await _page(request, cohort_id)


Change = Callable[[AsyncSession, Cohort], Awaitable[None]]


async def _edit(request: Request, cohort_id: int, action: str, change: Change) -> Response:
    """Run one edit; on a refused edit show the preview with the reason (nothing lost)."""
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            cohort = await get_cohort(session, cohort_id)
            await change(session, cohort)
    except LensError as exc:
        return await _page(request, cohort_id, status_code=exc.status_code, error=exc.message)
    lens = get_lens(request)
    if action == "run" and lens.runner is not None:
        lens.runner.wake()
    return RedirectResponse(f"/admin/cohorts/{cohort_id}/grouping?done={action}", status_code=303)


@router.post("/admin/cohorts/{cohort_id}/grouping/run")
async def run_form(
    request: Request, cohort_id: int, admin: AdminUser, seed: Annotated[str, Form()] = "0"
) -> Response:
    async def change(session: AsyncSession, cohort: Cohort) -> None:
        try:
            value = int(seed or 0)
        except ValueError:
            raise Invalid("The seed must be a whole number.") from None
        await service.request_grouping(session, cohort=cohort, by=admin, seed=value)

    return await _edit(request, cohort_id, "run", change)


def _optional_id(value: str) -> int | None:
    if value.strip() in ("", "none", "0"):
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise Invalid(f"{value!r} is not a number from the list; type one of them.") from None


# -- choosing from lists (each a page: a list per person would grow as people x groups) --


async def _choices_page(
    request: Request,
    cohort_id: int,
    title: str,
    action: str,
    field: str,
    hidden: dict[str, int],
    choices: list[Choice],
    current: str = "",
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        cohort = await get_cohort(session, cohort_id)
    return render(
        request,
        "admin/grouping_choose.html",
        {
            "cohort": cohort,
            "title": title,
            "action": f"/admin/cohorts/{cohort_id}/grouping/{action}",
            "field": field,
            "hidden": hidden,
            "choices": choices,
            "current": current,
        },
    )


def _tier_note(tier: Tier | None) -> tuple[str, bool]:
    if tier is None:
        return "cannot make this time", True
    return ("available" if tier == Tier.AVAILABLE else "only if needed"), False


@router.get("/admin/cohorts/{cohort_id}/grouping/move")
async def move_choices(request: Request, cohort_id: int, admin: AdminUser, signup: int) -> Response:
    async with get_lens(request).sessionmaker() as session:
        cohort = await get_cohort(session, cohort_id)
        preview = await service.get_preview(session, cohort=cohort)
        built = await service.load_problem(session, cohort)
    person = next((p for p in built.problem.participants if p.id == signup), None)
    row = built.rows.get(signup)
    if person is None or row is None:
        raise NotFound("That person is not waiting for a group in this preview; reload it.")
    k = built.problem.meeting_slots
    current = next(
        (
            str(g.group.number)
            for g in preview.groups
            if any(m.row.signup.id == signup for m in g.participants)
        ),
        "0",
    )
    choices = []
    for g in preview.groups:
        note, bad = _tier_note(alg.can_attend(person, g.group.start_slot, k))
        n = len(g.participants)
        if n >= cohort.max_group_size and str(g.group.number) != current:
            note, bad = f"{note}; full ({n} of {cohort.max_group_size})", True
        lead = g.facilitator.row.user.display_name if g.facilitator else "no facilitator"
        when = slot_label(g.group.start_slot)
        label = f"{g.group.name} · {when} · {plural(n, 'participant')} · {lead}"
        choices.append(Choice(str(g.group.number), label, note, bad))
    choices.append(Choice("0", "Out of every group", "left waiting"))
    return await _choices_page(
        request,
        cohort_id,
        f"Move {row.user.display_name}",
        "move",
        "to",
        {"signup": signup},
        choices,
        current,
    )


@router.get("/admin/cohorts/{cohort_id}/grouping/facilitator")
async def facilitator_choices(
    request: Request, cohort_id: int, admin: AdminUser, group: int
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        cohort = await get_cohort(session, cohort_id)
        preview = await service.get_preview(session, cohort=cohort)
        built = await service.load_problem(session, cohort)
    target = next((g for g in preview.groups if g.group.id == group), None)
    if target is None:
        raise NotFound("That group is not in this preview any more; reload it.")
    k = built.problem.meeting_slots
    leads: dict[int, list[str]] = {}
    for g in preview.groups:
        if g.facilitator:
            leads.setdefault(g.facilitator.row.signup.id, []).append(g.group.name)
    choices = []
    for f in built.problem.facilitators:
        row = built.rows[f.id]
        note, bad = _tier_note(alg.can_attend(f, target.group.start_slot, k))
        led = leads.get(f.id, [])
        capacity = f"leads {', '.join(led) or 'no group'}, up to {plural(f.max_groups, 'group')}"
        if len(led) >= f.max_groups and target.group.name not in led:
            note, bad = f"{note}; at capacity", True
        choices.append(Choice(str(f.id), f"{row.user.display_name} · {capacity}", note, bad))
    choices.append(Choice("0", "No facilitator", ""))
    current = str(target.facilitator.row.signup.id) if target.facilitator else "0"
    return await _choices_page(
        request,
        cohort_id,
        f"Facilitator for {target.group.name} ({slot_label(target.group.start_slot)})",
        "facilitator",
        "signup",
        {"group": group},
        choices,
        current,
    )


@router.get("/admin/cohorts/{cohort_id}/grouping/merge")
async def merge_choices(request: Request, cohort_id: int, admin: AdminUser, group: int) -> Response:
    async with get_lens(request).sessionmaker() as session:
        cohort = await get_cohort(session, cohort_id)
        preview = await service.get_preview(session, cohort=cohort)
    target = next((g for g in preview.groups if g.group.id == group), None)
    if target is None:
        raise NotFound("That group is not in this preview any more; reload it.")
    choices = [
        Choice(
            str(g.group.number),
            f"{g.group.name} · {slot_label(g.group.start_slot)} · "
            f"{plural(len(g.participants), 'participant')}",
            "another time: check who can make it"
            if g.group.start_slot != target.group.start_slot
            else "",
        )
        for g in preview.groups
        if g.group.id != group
    ]
    return await _choices_page(
        request,
        cohort_id,
        f"Merge a group into {target.group.name}",
        "merge",
        "other",
        {"group": group},
        choices,
    )


@router.post("/admin/cohorts/{cohort_id}/grouping/move")
async def move_form(
    request: Request,
    cohort_id: int,
    admin: AdminUser,
    signup: Annotated[int, Form()],
    to: Annotated[str, Form()] = "",
) -> Response:
    async def change(session: AsyncSession, cohort: Cohort) -> None:
        await edits.move_person_to_number(
            session, cohort=cohort, signup_id=signup, number=to.strip()
        )

    return await _edit(request, cohort_id, "move", change)


@router.post("/admin/cohorts/{cohort_id}/grouping/facilitator")
async def facilitator_form(
    request: Request,
    cohort_id: int,
    admin: AdminUser,
    group: Annotated[int, Form()],
    signup: Annotated[str, Form()] = "",
) -> Response:
    async def change(session: AsyncSession, cohort: Cohort) -> None:
        await edits.set_facilitator(
            session, cohort=cohort, group_id=group, signup_id=_optional_id(signup)
        )

    return await _edit(request, cohort_id, "facilitator", change)


@router.post("/admin/cohorts/{cohort_id}/grouping/merge")
async def merge_form(
    request: Request,
    cohort_id: int,
    admin: AdminUser,
    group: Annotated[int, Form()],
    other: Annotated[str, Form()] = "",
) -> Response:
    async def change(session: AsyncSession, cohort: Cohort) -> None:
        if not other.strip():
            raise Invalid("Type the number of the group to merge into this one.")
        target = await edits.draft_group_id(session, cohort=cohort, number=other)
        await edits.merge_groups(session, cohort=cohort, into=group, other=target)

    return await _edit(request, cohort_id, "merge", change)


@router.post("/admin/cohorts/{cohort_id}/grouping/split")
async def split_form(
    request: Request, cohort_id: int, admin: AdminUser, group: Annotated[int, Form()]
) -> Response:
    async def change(session: AsyncSession, cohort: Cohort) -> None:
        await edits.split_group(session, cohort=cohort, group_id=group)

    return await _edit(request, cohort_id, "split", change)


@router.post("/admin/cohorts/{cohort_id}/grouping/approve")
async def approve_form(
    request: Request, cohort_id: int, admin: AdminUser, confirm: Annotated[str, Form()] = ""
) -> Response:
    async def change(session: AsyncSession, cohort: Cohort) -> None:
        if confirm != "yes":
            raise Invalid("Tick the box to confirm: approving starts the cohort for everyone.")
        await service.approve(session, cohort=cohort, by=admin)

    return await _edit(request, cohort_id, "approve", change)


# -- a person's place in a cohort ------------------------------------------------------


@router.get("/cohorts/{cohort_id}")
async def my_status(request: Request, cohort_id: int, user: CurrentUser) -> Response:
    return await status_page(request, cohort_id, user)


async def status_page(
    request: Request, cohort_id: int, user: User, *, status_code: int = 200, error: str = ""
) -> Response:
    """A person's place in a cohort, with what they can do from there."""
    async with get_lens(request).sessionmaker() as session:
        cohort = await get_cohort(session, cohort_id)
        signup = await get_signup(session, cohort=cohort, user=user)
        if signup is None or signup.status == SignupStatus.DRAFT:
            return RedirectResponse(f"/enroll/{cohort.id}", status_code=303)
        membership = await group_of(session, signup=signup)
        offers = await openings(session, cohort=cohort, signup=signup) if not membership else []
        switches = (
            await selfservice.switch_options(session, cohort=cohort, signup=signup)
            if membership
            else []
        )
        pending = await selfservice.pending_switch(session, signup=signup)
        pending_group = await session.get(Group, pending.to_group_id) if pending else None
        own = await selfservice.own_meetings_ahead(session, signup) if membership else []
        chosen = request.query_params.get("visit", "")
        visit_for = int(chosen) if chosen.isdigit() and len(chosen) < 6 else None
        visits = (
            await selfservice.visit_options(
                session, cohort=cohort, signup=signup, meeting_number=visit_for
            )
            if visit_for is not None
            else []
        )
        my_visits = await selfservice.visits_of(session, signup=signup)
        later = await selfservice.later_cohorts(session, cohort=cohort)
        deferred_to = await session.get(Cohort, signup.deferred_to) if signup.deferred_to else None
    sure, maybe = availability_of(signup)
    meeting = None
    zone = signup.timezone or user.timezone or "UTC"
    if membership:
        weeks = meeting_weeks(cohort.start_date, cohort.meetings)
        meeting = f"{local_time(membership[0].start_slot, weeks[0], zone):%A %H:%M} ({zone})"
    tz = zoneinfo.ZoneInfo(zone)
    return render(
        request,
        "cohorts/status.html",
        {
            "cohort": cohort,
            "signup": signup,
            "membership": membership,
            "meeting": meeting,
            "offers": offers,
            "switches": switches,
            "pending": pending,
            "pending_group": pending_group,
            "own_meetings": [(m, m.starts_at.astimezone(tz)) for m in own],
            "visit_for": visit_for,
            "visits": visits,
            "my_visits": [(v, m, g, m.starts_at.astimezone(tz)) for v, m, g in my_visits],
            "later": later,
            "deferred_to": deferred_to,
            "hours": (len(sure) / 2, len(maybe) / 2),
            "can_change": can_change(cohort, signup),
            "running": cohort.status == CohortStatus.RUNNING,
            "reason": REASON_TEXT.get(signup.unplaced_reason or "", ""),
            "enrolled": request.query_params.get("enrolled"),
            "saved": request.query_params.get("saved"),
            "error": error,
            "course_title": course_titles(request).get(cohort.course_slug, cohort.course_slug),
        },
        status_code=status_code,
    )


@router.post("/cohorts/{cohort_id}/join")
async def join_form(
    request: Request, cohort_id: int, user: CurrentUser, group: Annotated[int, Form()]
) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort = await get_cohort(session, cohort_id)
        signup = await get_signup(session, cohort=cohort, user=user)
        if signup is None or signup.status == SignupStatus.DRAFT:
            raise NotFound("Finish enrolling first.")
        await join_group(session, cohort=cohort, signup=signup, group_id=group)
    return RedirectResponse(f"/cohorts/{cohort_id}?saved=group", status_code=303)
