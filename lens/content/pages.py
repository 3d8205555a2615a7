from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from lens.auth.deps import AdminUser, load_user
from lens.content.deps import loaded_content
from lens.content.service import get_status
from lens.content.sources import source_from_settings
from lens.content.tasks import request_sync
from lens.db.engine import unit_of_work
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])


@router.post("/admin/content/refresh")
async def content_refresh_form(request: Request, admin: AdminUser) -> Response:
    lens = get_lens(request)
    async with unit_of_work(lens.sessionmaker) as session:
        await request_sync(session)
    if lens.runner is not None:
        lens.runner.wake()
    return RedirectResponse("/admin/content?queued=1", status_code=303)


@router.get("/admin/content")
async def content_status_page(request: Request, admin: AdminUser, queued: bool = False) -> Response:
    lens = get_lens(request)
    async with lens.sessionmaker() as session:
        status = await get_status(
            session,
            source_name=source_from_settings(lens.settings, lens.http).name,
            content=loaded_content(request),
        )
    branch = lens.settings.educational_content_branch if lens.settings.content_repo else None
    return render(
        request, "admin/content.html", {"status": status, "branch": branch, "queued": queued}
    )
