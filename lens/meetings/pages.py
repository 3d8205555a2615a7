"""A group's page (where it meets, its meetings with RSVPs, and members' progress for its
facilitator, who also sets the call link and place there), a meeting's page where the
facilitator moves or cancels it, the private calendar feed
(for calendar apps: no cookie, a secret address) and the page where a person makes or
revokes that address."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, time
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from lens.auth.deps import CurrentUser, load_user
from lens.cohorts.availability import local_time, meeting_weeks
from lens.cohorts.groups import get_group, get_group_to_lead, member_progress
from lens.content.deps import course_titles, loaded_content
from lens.db.base import utcnow
from lens.db.engine import unit_of_work
from lens.errors import Conflict, Invalid
from lens.meetings import attendance
from lens.meetings.place import PlaceInvalid, set_meeting_place
from lens.meetings.service import (
    ANSWER_LABELS,
    SITE_ANSWERS,
    answer_counts,
    cancel_meeting,
    check_can_answer,
    feed_calendar,
    get_meeting,
    guests_of,
    has_feed,
    list_meetings,
    move_meetings,
    new_feed,
    open_for_answers,
    revoke_feeds,
    rsvps_for_group,
    set_rsvp,
    substitute_of,
)
from lens.users.models import User
from lens.web.panels import render_panels
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])
feed = APIRouter(include_in_schema=False)


@feed.get("/calendar/{token}.ics")
async def calendar_feed(request: Request, token: str) -> Response:
    base = get_lens(request).settings.public_url
    async with get_lens(request).sessionmaker() as session:
        body = await feed_calendar(
            session, token=token, base_url=base, host=urlsplit(base).hostname or "lens"
        )
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "private, max-age=300"},
    )


@router.get("/account/calendar")
async def calendar_page(request: Request, user: CurrentUser) -> Response:
    async with get_lens(request).sessionmaker() as session:
        active = await has_feed(session, user=user)
    return render(request, "account/calendar.html", {"active": active, "url": None})


@router.post("/account/calendar")
async def make_feed(request: Request, user: CurrentUser) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        token = await new_feed(session, user=user)
    url = f"{get_lens(request).settings.public_url}/calendar/{token}.ics"
    return render(request, "account/calendar.html", {"active": True, "url": url})


@router.post("/account/calendar/revoke")
async def revoke(request: Request, user: CurrentUser) -> Response:
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        await revoke_feeds(session, user=user)
    return render(request, "account/calendar.html", {"active": False, "url": None, "revoked": True})


# -- a group and its meetings ----------------------------------------------------------


@router.get("/groups/{group_id}")
async def group_page(request: Request, group_id: int, user: CurrentUser) -> Response:
    return await _group_page(request, group_id, user)


async def _group_page(
    request: Request,
    group_id: int,
    user: User,
    *,
    status_code: int = 200,
    place_typed: dict[str, str] | None = None,
    place_errors: dict[str, str] | None = None,
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        access = await get_group(session, group_id=group_id, viewer=user)
        progress, modules = (
            await member_progress(session, access=access, content=loaded_content(request))
            if access.viewer_leads
            else ([], 0)
        )
        meetings = await list_meetings(session, group=access.group)
        answers = await rsvps_for_group(session, group=access.group)
        taken = await attendance.summary(session, meetings=meetings) if access.viewer_leads else {}
        missed = (
            await attendance.missed_in_a_row(session, group=access.group)
            if access.viewer_leads
            else {}
        )
        # What features above add (lens/web/panels.py): the Discord channel, say.
        panels = await render_panels(request, "group.page", session, access.group)
    viewer_zone = user.timezone or "UTC"
    weeks = meeting_weeks(access.cohort.start_date, access.cohort.meetings)
    when = local_time(access.group.start_slot, weeks[0], viewer_zone)
    zone = zoneinfo.ZoneInfo(viewer_zone)
    schedule = [(m, m.starts_at.astimezone(zone)) for m in meetings]
    if schedule:  # the real first meeting (its zone's wall-clock time, DST included)
        when = schedule[0][1]
    now = utcnow()
    people = [(r.user.id, r.user.display_name) for r in access.members]
    rsvp = {
        m.id: {
            "mine": answers.get(m.id, {}).get(user.id, "pending"),
            # Who comes, for the facilitator (and admins).
            "counts": answer_counts(answers.get(m.id, {}), people) if access.viewer_leads else [],
        }
        for m in meetings
        if open_for_answers(m, now=now)
    }
    return render(
        request,
        "meetings/group.html",
        {
            "access": access,
            "panels": panels,
            # What the form shows: what was typed when it was refused, else what is set.
            "place_typed": place_typed
            or {
                "call_url": access.group.call_url or "",
                "location": access.group.location or "",
            },
            "place_errors": place_errors or {},
            "progress": progress,
            "modules": modules,
            "meeting": f"{when:%A %H:%M} ({viewer_zone})",
            "schedule": schedule,
            "zone": viewer_zone,
            "rsvp": rsvp,
            # Admins who are not in the group see the answers but give none.
            "answers_for_viewer": any(r.user.id == user.id for r in access.members),
            "choices": [(status, ANSWER_LABELS[status]) for status in SITE_ANSWERS],
            "labels": ANSWER_LABELS,
            "taken": taken,
            "now": now,
            "missed": [
                (row, missed[row.signup.id]) for row in access.members if row.signup.id in missed
            ],
            "course_title": course_titles(request).get(
                access.cohort.course_slug, access.cohort.course_slug
            ),
        },
        status_code=status_code,
    )


@router.post("/groups/{group_id}/place")
async def place_form(
    request: Request,
    group_id: int,
    user: CurrentUser,
    call_url: Annotated[str, Form()] = "",
    location: Annotated[str, Form()] = "",
) -> Response:
    """Where the group meets: a call link and/or a place (both empty: cleared). Its
    facilitator or an admin; a refusal shows beside the field, keeping what was typed."""
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            changed = await set_meeting_place(
                session, group_id=group_id, by=user, call_url=call_url, location=location
            )
    except PlaceInvalid as exc:
        return await _group_page(
            request,
            group_id,
            user,
            status_code=exc.status_code,
            place_typed={"call_url": call_url, "location": location},
            place_errors=exc.problems,
        )
    outcome = "saved" if changed else "unchanged"
    return RedirectResponse(f"/groups/{group_id}?place={outcome}#place", status_code=303)


@router.post("/groups/{group_id}/meetings/{number}/rsvp")
async def rsvp_form(
    request: Request,
    group_id: int,
    number: int,
    user: CurrentUser,
    status: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """A member's answer for a meeting (attending, not_attending or tentative). The
    group's members and facilitator only; an admin outside the group gets 403. `back`:
    the page of this site to return to (the learner's home), else the group's page."""
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        access = await get_group(session, group_id=group_id, viewer=user)
        await check_can_answer(session, group_id=access.group.id, user=user)
        meeting = await get_meeting(session, group=access.group, number=number)
        await set_rsvp(session, meeting=meeting, user=user, status=status)
    if back.startswith("/") and not back.startswith("//") and "\\" not in back:
        return RedirectResponse(back, status_code=303)
    return RedirectResponse(f"/groups/{group_id}#meeting-{number}", status_code=303)


@router.get("/groups/{group_id}/meetings/{number}")
async def meeting_page(request: Request, group_id: int, number: int, user: CurrentUser) -> Response:
    return await _meeting_page(request, group_id, number, user)


async def _meeting_page(
    request: Request,
    group_id: int,
    number: int,
    user: User,
    *,
    status_code: int = 200,
    **extra: object,
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        access = await get_group_to_lead(session, group_id=group_id, viewer=user)
        meeting = await get_meeting(session, group=access.group, number=number)
        guests = await guests_of(session, meeting=meeting)
        substitute = await substitute_of(session, meeting=meeting)
    zone = user.timezone or "UTC"
    local = meeting.starts_at.astimezone(zoneinfo.ZoneInfo(zone))
    return render(
        request,
        "meetings/meeting.html",
        {
            "access": access,
            "meeting": meeting,
            "local": local,
            "zone": zone,
            "guests": guests,
            "substitute": substitute,
            **extra,
        },
        status_code=status_code,
    )


@router.post("/groups/{group_id}/meetings/{number}/move")
async def move_meeting_form(
    request: Request,
    group_id: int,
    number: int,
    user: CurrentUser,
    day: Annotated[str, Form()] = "",
    at: Annotated[str, Form()] = "",
    all_future: Annotated[bool, Form()] = False,
) -> Response:
    zone = zoneinfo.ZoneInfo(user.timezone or "UTC")
    try:
        new_start = datetime.combine(date.fromisoformat(day), time.fromisoformat(at), zone)
    except ValueError:
        return await _meeting_page(
            request,
            group_id,
            number,
            user,
            error="Give the new date (YYYY-MM-DD) and time (HH:MM).",
            status_code=422,
        )
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            access = await get_group_to_lead(session, group_id=group_id, viewer=user)
            await move_meetings(
                session,
                group=access.group,
                number=number,
                new_start=new_start.astimezone(UTC),
                all_future=all_future,
            )
    except (Invalid, Conflict) as exc:
        return await _meeting_page(
            request, group_id, number, user, error=exc.message, status_code=exc.status_code
        )
    return RedirectResponse(f"/groups/{group_id}?changed={number}", status_code=303)


@router.post("/groups/{group_id}/meetings/{number}/cancel")
async def cancel_meeting_form(
    request: Request,
    group_id: int,
    number: int,
    user: CurrentUser,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    if confirm != "yes":
        return await _meeting_page(
            request,
            group_id,
            number,
            user,
            error="Tick the box to confirm the cancellation.",
            status_code=422,
        )
    try:
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            access = await get_group_to_lead(session, group_id=group_id, viewer=user)
            await cancel_meeting(session, group=access.group, number=number)
    except Conflict as exc:
        return await _meeting_page(
            request, group_id, number, user, error=exc.message, status_code=exc.status_code
        )
    return RedirectResponse(f"/groups/{group_id}?changed={number}", status_code=303)
