from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from lens.auth.deps import AdminUser, load_user
from lens.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(load_user)])


@router.get("/privacy")
async def privacy(request: Request) -> Response:
    return render(request, "privacy.html")


@router.get("/terms")
async def terms(request: Request) -> Response:
    return render(request, "terms.html")


@router.get("/admin")
async def admin_index(request: Request, admin: AdminUser) -> Response:
    return render(request, "admin/index.html")
