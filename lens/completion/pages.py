"""Completion on the pages: the learner's home (`/my-course`, and its summary on the
landing page), the admin's table per cohort (and its CSV for reporting), a panel on the
admin's cohort page, and a panel on a group's page for its facilitator."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Depends, Request
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from lens.auth.deps import AdminUser, CurrentUser, load_user
from lens.cohorts.models import Cohort, CohortStatus, Group, GroupMember, Role
from lens.cohorts.service import get_cohort
from lens.completion import my_course
from lens.completion.models import Certificate
from lens.completion.service import Standing, standings
from lens.content.deps import course_titles, loaded_content
from lens.meetings.attendance import LABELS
from lens.meetings.service import ANSWER_LABELS, SITE_ANSWERS, facilitator_user_ids
from lens.users.models import User
from lens.web.state import get_lens
from lens.web.templating import render, render_fragment

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])

SHOWN = (CohortStatus.RUNNING, CohortStatus.FINISHED)


@router.get("/admin/cohorts/{cohort_id}/completion")
async def completion_page(request: Request, cohort_id: int, admin: AdminUser) -> Response:
    content = loaded_content(request)
    async with get_lens(request).sessionmaker() as session:
        cohort = await get_cohort(session, cohort_id)
        rule, rows = await standings(session, cohort=cohort, content=content)
        certs = {
            c.signup_id: c
            for c in await session.scalars(
                select(Certificate).where(Certificate.cohort_id == cohort.id)
            )
        }
    shown = request.query_params.get("show", "")
    listed = [s for s in rows if shown == "" or (shown == "complete") == s.complete]
    return render(
        request,
        "completion/cohort.html",
        {
            "cohort": cohort,
            "course_title": course_titles(request).get(cohort.course_slug, cohort.course_slug),
            "rule": rule,
            "modules_needed": len(rows[0].modules_done + rows[0].modules_missing) if rows else 0,
            "rows": listed,
            "total": len(rows),
            "complete": sum(1 for s in rows if s.complete),
            "shown": shown,
            "content_missing": content is None,
            "certs": certs,
            "uncertified": sum(1 for s in rows if s.complete and s.row.signup.id not in certs),
            "issued": request.query_params.get("issued"),
        },
    )


def _csv_row(s: Standing) -> list[str]:
    needed = len(s.modules_done) + len(s.modules_missing)
    return [
        s.row.user.display_name,
        s.group.name if s.group else "",
        str(s.attended),
        str(s.meetings_needed),
        str(len(s.modules_done)),
        str(needed),
        "yes" if s.complete else "no",
        "; ".join(s.missing),
    ]


def _inert(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


@router.get("/admin/cohorts/{cohort_id}/completion.csv")
async def completion_csv(request: Request, cohort_id: int, admin: AdminUser) -> Response:
    async with get_lens(request).sessionmaker() as session:
        cohort = await get_cohort(session, cohort_id)
        _, rows = await standings(session, cohort=cohort, content=loaded_content(request))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "name",
            "group",
            "meetings attended",
            "meetings needed",
            "modules completed",
            "modules needed",
            "complete",
            "missing",
        ]
    )
    for s in rows:
        # Text typed as a formula must not run as one in a spreadsheet.
        writer.writerow([_inert(cell) for cell in _csv_row(s)])
    slug = "".join(c if c.isascii() and c.isalnum() else "-" for c in cohort.name.lower())
    slug = "-".join(part for part in slug.split("-") if part)[:60]
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="completion-{slug or cohort.id}.csv"'
        },
    )


async def cohort_panel(request: Request, session: AsyncSession, cohort: Cohort) -> Markup | None:
    """On the admin's cohort page (place "admin.cohort"): how many completed, a link."""
    if cohort.status not in SHOWN:
        return None
    _, rows = await standings(session, cohort=cohort, content=loaded_content(request))
    return render_fragment(
        request,
        "completion/cohort_panel.html",
        {"cohort": cohort, "total": len(rows), "complete": sum(1 for s in rows if s.complete)},
    )


async def group_panel(request: Request, session: AsyncSession, group: Group) -> Markup | None:
    """On a group's page (place "group.page"), for its facilitator and admins: each
    member's way to completion."""
    viewer: User | None = getattr(request.state, "user", None)
    if viewer is None or not (
        viewer.is_admin or viewer.id in await facilitator_user_ids(session, group_id=group.id)
    ):
        return None
    cohort = await session.get(Cohort, group.cohort_id)
    if cohort is None or cohort.status not in SHOWN:
        return None
    members = await session.scalars(
        select(GroupMember.signup_id).where(
            GroupMember.group_id == group.id, GroupMember.role == Role.PARTICIPANT
        )
    )
    rule, rows = await standings(
        session, cohort=cohort, content=loaded_content(request), signup_ids=list(members)
    )
    mine = [s for s in rows if s.group is not None and s.group.id == group.id]
    return render_fragment(
        request,
        "completion/group_panel.html",
        {"group": group, "rule": rule, "rows": mine},
    )


# -- the learner's home -------------------------------------------------------------------


@router.get("/my-course")
async def my_course_page(request: Request, user: CurrentUser) -> Response:
    content = loaded_content(request)
    async with get_lens(request).sessionmaker() as session:
        found = await my_course.places(session, user=user, content=content)
    return render(
        request,
        "completion/my_course.html",
        {
            "places": found,
            "titles": course_titles(request),
            "choices": [(status, ANSWER_LABELS[status]) for status in SITE_ANSWERS],
            "labels": ANSWER_LABELS,
            "marks": LABELS,
            "zone": user.timezone or "UTC",
        },
    )


async def landing_panel(
    request: Request, session: AsyncSession, viewer: User | None
) -> Markup | None:
    """On the landing page (place "landing"), for a signed-in person in a cohort: where
    they are, instead of an invitation to enroll."""
    if viewer is None:
        return None
    found = await my_course.places(
        session, user=viewer, content=loaded_content(request), full=False
    )
    if not found:
        return None
    return render_fragment(
        request,
        "completion/landing_panel.html",
        {"places": found, "titles": course_titles(request), "zone": viewer.timezone or "UTC"},
    )
