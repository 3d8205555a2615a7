"""The attendance page of a meeting: the facilitator (or the meeting's stand-in, or an
admin) marks each member and guest present, late, absent or excused, from a form
pre-filled with the suggestions of lens/meetings/attendance.py."""

from __future__ import annotations

import re
import zoneinfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from lens.auth.deps import CurrentUser, load_user
from lens.cohorts.models import Cohort, Group, GroupStatus
from lens.db.engine import unit_of_work
from lens.errors import Forbidden, Invalid, LensError, NotFound
from lens.meetings import attendance
from lens.meetings.models import AttendanceStatus
from lens.meetings.service import get_meeting
from lens.users.models import User
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])

_FIELD = re.compile(r"^s(\d{1,12})$")


async def _group(session: AsyncSession, group_id: int) -> tuple[Group, Cohort]:
    group = await session.get(Group, group_id)
    if group is None or group.status not in (GroupStatus.ACTIVE, GroupStatus.DISBANDED):
        raise NotFound("There is no such group.")
    cohort = await session.get(Cohort, group.cohort_id)
    assert cohort is not None
    return group, cohort


async def _page(
    request: Request,
    group_id: int,
    number: int,
    user: User,
    *,
    status_code: int = 200,
    typed: dict[int, str] | None = None,
    **extra: object,
) -> Response:
    async with get_lens(request).sessionmaker() as session:
        group, cohort = await _group(session, group_id)
        meeting = await get_meeting(session, group=group, number=number)
        if not await attendance.may_take(session, meeting=meeting, user=user):
            raise Forbidden(
                "Only the group's facilitator, the meeting's stand-in and the course team "
                "take attendance."
            )
        lines = await attendance.roster(session, meeting=meeting)
    zone = user.timezone or "UTC"
    try:
        attendance.check_held(meeting)
        not_yet = None
    except LensError as exc:
        not_yet = exc.message
    return render(
        request,
        "meetings/attendance.html",
        {
            "group": group,
            "cohort": cohort,
            "meeting": meeting,
            "local": meeting.starts_at.astimezone(zoneinfo.ZoneInfo(zone)),
            "zone": zone,
            "lines": lines,
            "typed": typed or {},
            "labels": attendance.LABELS,
            "statuses": AttendanceStatus.ALL,
            "not_yet": not_yet,
            "saved": request.query_params.get("saved") == "1",
            **extra,
        },
        status_code=status_code,
    )


@router.get("/groups/{group_id}/meetings/{number}/attendance")
async def attendance_page(
    request: Request, group_id: int, number: int, user: CurrentUser
) -> Response:
    return await _page(request, group_id, number, user)


@router.post("/groups/{group_id}/meetings/{number}/attendance")
async def attendance_form(
    request: Request, group_id: int, number: int, user: CurrentUser
) -> Response:
    form = await request.form()
    marks: dict[int, str] = {}
    for key, value in form.multi_items():
        found = _FIELD.match(key)
        if found and isinstance(value, str):
            marks[int(found.group(1))] = value
    reason = str(form.get("reason") or "")
    try:
        if not marks:
            raise Invalid("Mark at least one person.")
        if len(reason) > 2000:
            raise Invalid("Keep the note under 2,000 characters.")
        async with unit_of_work(get_lens(request).sessionmaker) as session:
            group, _ = await _group(session, group_id)
            meeting = await get_meeting(session, group=group, number=number)
            await attendance.take(
                session, meeting=meeting, group=group, by=user, marks=marks, reason=reason
            )
    except (Invalid, LensError) as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        return await _page(
            request,
            group_id,
            number,
            user,
            status_code=exc.status_code,
            typed=marks,
            error=exc.message,
            reason=reason,
        )
    return RedirectResponse(
        f"/groups/{group_id}/meetings/{number}/attendance?saved=1", status_code=303
    )
