"""How reading progress follows what happens below: a visitor signing in."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.events import VisitorSignedIn
from lens.courses.service import merge_anonymous
from lens.events import reaction
from lens.logging import get_logger

log = get_logger("lens.courses")


@reaction(VisitorSignedIn)
async def progress_joins_the_account(session: AsyncSession, event: VisitorSignedIn) -> None:
    moved = await merge_anonymous(session, anon_id=event.visitor_id, user_id=event.user_id)
    if moved:
        log.info("auth.progress_merged", user_id=event.user_id, rows=moved)
