"""How tutor conversations follow what happens below: a visitor signing in."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.events import VisitorSignedIn
from lens.events import reaction
from lens.logging import get_logger
from lens.tutor.service import merge_anonymous_conversations

log = get_logger("lens.tutor")


@reaction(VisitorSignedIn)
async def conversations_join_the_account(session: AsyncSession, event: VisitorSignedIn) -> None:
    moved = await merge_anonymous_conversations(
        session, anon_id=event.visitor_id, user_id=event.user_id
    )
    if moved:
        log.info("tutor.conversations_merged", user_id=event.user_id, conversations=moved)
