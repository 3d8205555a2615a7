from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from lens.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request) -> Response:
    return render(request, "home.html")


@router.get("/privacy")
async def privacy(request: Request) -> Response:
    return render(request, "privacy.html")


@router.get("/terms")
async def terms(request: Request) -> Response:
    return render(request, "terms.html")
