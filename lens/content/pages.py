"""The admin's content status page, and the images the content embeds.

`assets` serves `GET /content/assets/<repository path>` from the snapshot this process
shows: only images the snapshot keeps (those its content embeds); anything else, and any
path that climbs out (`..`) or starts at the root, is a 404. The bytes are an author's
upload served from our origin, so the browser must not sniff another type from them,
and an SVG gets a policy that lets it run no script. No sign-in: the course is public,
and so are its images (cached by browsers and proxies for an hour).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from lens.auth.deps import AdminUser, load_user
from lens.content.deps import content_store, loaded_content
from lens.content.files import asset_type, is_asset
from lens.content.service import get_asset_data, get_asset_hash, get_status
from lens.content.sources import source_from_settings
from lens.content.tasks import request_sync
from lens.db.engine import READ_ONLY, unit_of_work
from lens.errors import NotFound
from lens.web.state import get_lens
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])
assets = APIRouter(include_in_schema=False)

SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
ASSET_MAX_AGE = 3600


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


def safe_asset_path(path: str) -> bool:
    """A relative path inside the repository naming an image; nothing to climb out with."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        return False
    if any(part in ("", ".", "..") for part in path.split("/")):
        return False
    return is_asset(path)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


@assets.api_route("/content/assets/{path:path}", methods=["GET", "HEAD"])
async def content_asset(request: Request, path: str) -> Response:
    store = content_store(request)
    snapshot = store.snapshot if store is not None else None
    content_type = asset_type(path)
    if snapshot is None or content_type is None or not safe_asset_path(path):
        raise NotFound("No such image.")
    async with get_lens(request).sessionmaker() as session:
        await session.connection(execution_options=READ_ONLY)
        sha = await get_asset_hash(session, snapshot_id=snapshot.id, path=path)
        if sha is None:
            raise NotFound("No such image.")
        etag = f'"{sha}"'
        headers = {
            "ETag": etag,
            "Cache-Control": f"public, max-age={ASSET_MAX_AGE}",
            "X-Content-Type-Options": "nosniff",
        }
        if content_type == "image/svg+xml":
            headers["Content-Security-Policy"] = SVG_POLICY
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        data = await get_asset_data(session, snapshot_id=snapshot.id, path=path)
    if data is None:  # pruned between the two reads
        raise NotFound("No such image.")
    return Response(content=data, media_type=content_type, headers=headers)
