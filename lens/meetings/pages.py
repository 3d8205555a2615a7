"""The private calendar feed (for calendar apps: no cookie, a secret address) and the
page where a person makes or revokes that address."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from lens.app_state import get_lens
from lens.auth.deps import CurrentUser, load_user
from lens.db.engine import unit_of_work
from lens.meetings.service import feed_calendar, has_feed, new_feed, revoke_feeds
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
