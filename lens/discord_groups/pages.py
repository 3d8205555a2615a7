"""The Discord parts of pages below: on the admin's cohort page, the last realization's
report and a button to run one now; on a group's page, a link to its text channel."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from lens.auth.deps import AdminUser, load_user
from lens.cohorts.models import Cohort, CohortStatus, Group
from lens.cohorts.service import get_cohort
from lens.db.engine import unit_of_work
from lens.discord_groups.report import get_last_report
from lens.discord_groups.service import channel_url, group_text_channel, request_realization
from lens.web.state import get_lens
from lens.web.templating import render_fragment

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])


async def cohort_panel(request: Request, session: AsyncSession, cohort: Cohort) -> Markup | None:
    """For the admin's cohort page (place "admin.cohort"): running cohorts only."""
    if cohort.status != CohortStatus.RUNNING:
        return None
    settings = get_lens(request).settings
    return render_fragment(
        request,
        "discord_groups/cohort_panel.html",
        {
            "cohort": cohort,
            "report": await get_last_report(session, cohort_id=cohort.id),
            "discord_on": bool(settings.discord_bot_token and settings.discord_server_id),
            "queued": request.query_params.get("discord") == "queued",
        },
    )


async def group_panel(request: Request, session: AsyncSession, group: Group) -> Markup | None:
    """For a group's page (place "group.page"): its text channel, once made in Discord."""
    server = get_lens(request).settings.discord_server_id
    if not server:
        return None
    url = channel_url(server, await group_text_channel(session, group_id=group.id))
    if url is None:
        return None
    return render_fragment(request, "discord_groups/group_panel.html", {"group": group, "url": url})


@router.post("/admin/cohorts/{cohort_id}/discord")
async def realize_in_discord(request: Request, cohort_id: int, admin: AdminUser) -> Response:
    """Queue (re)creating the cohort's group channels and events in Discord."""
    async with unit_of_work(get_lens(request).sessionmaker) as session:
        cohort = await get_cohort(session, cohort_id)
        await request_realization(session, cohort_id=cohort.id)
    return RedirectResponse(f"/admin/cohorts/{cohort_id}?discord=queued", status_code=303)
