"""Parts that a feature above adds to a page of a feature below.

A package may not import the features above it, yet some of its pages show their parts:
the admin's cohort page (lens/cohorts) shows the groups' Discord spaces
(lens/discord_groups). The page names a place and renders whatever was added there:

    panels = await render_panels(request, "admin.cohort", session, cohort)

and the app adds the feature's part when it assembles the features (lens/app):

    add_panel(app, "admin.cohort", discord_pages.cohort_panel)

A panel is a coroutine `(request, session, subject) -> Markup | None` (None: nothing to
show); panels render in the order they were added.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

Panel = Callable[[Request, AsyncSession, Any], Awaitable[Markup | None]]


def add_panel(app: FastAPI, place: str, panel: Panel) -> None:
    if not hasattr(app.state, "panels"):
        app.state.panels = {}
    places: dict[str, list[Panel]] = app.state.panels
    places.setdefault(place, []).append(panel)


async def render_panels(
    request: Request, place: str, session: AsyncSession, subject: Any
) -> list[Markup]:
    places: dict[str, list[Panel]] = getattr(request.app.state, "panels", {})
    rendered = [await panel(request, session, subject) for panel in places.get(place, [])]
    return [html for html in rendered if html is not None]
