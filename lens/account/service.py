"""What Lens keeps about a person, as one download, and deleting it.

Here, above the features that keep personal data (reading progress, tutor
conversations), so the export and the deletion can name each of them. The Discord
groups (above) react to the deletion through DiscordAccountChanged: no more access.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.auth.models import SignInToken
from lens.content.parsed import ContentSet
from lens.courses.models import Progress
from lens.db.base import utcnow
from lens.events import publish
from lens.tutor.transcripts import delete_user_transcripts, list_transcripts, transcript_json
from lens.users.events import DiscordAccountChanged
from lens.users.models import User
from lens.users.service import account_data


def _when(value: Any) -> str | None:
    return value.isoformat() if value else None


async def export_data(
    session: AsyncSession, *, user: User, content: ContentSet | None = None
) -> dict[str, Any]:
    """Everything Lens keeps about this person (more sections join as features do)."""
    rows = list(await session.scalars(select(Progress).where(Progress.user_id == user.id)))
    transcripts = await list_transcripts(session, user_id=user.id, content=content)
    return {
        "account": account_data(user),
        "reading_progress": [
            {
                "module": r.module_key,
                "section": r.content_id or None,
                "completed_at": _when(r.completed_at),
                "seconds_reading": r.seconds,
            }
            for r in rows
        ],
        "tutor_conversations": [transcript_json(t) for t in transcripts],
        "exported_at": utcnow().isoformat(),
    }


async def delete_account(session: AsyncSession, *, user: User) -> None:
    """Remove personal data; the row stays (anonymous) so course statistics still add up."""
    await session.execute(delete(SignInToken).where(SignInToken.user_id == user.id))
    if user.email:
        await session.execute(delete(SignInToken).where(SignInToken.email == user.email))
    await delete_user_transcripts(session, user_id=user.id)
    user.discord_id = None
    user.discord_username = None
    user.discord_global_name = None
    user.avatar = None
    user.nickname = None
    user.email = None
    user.email_verified_at = None
    user.timezone = None
    user.is_admin = False
    user.deleted_at = utcnow()
    user.session_version += 1  # every session ends
    await session.flush()
    await publish(session, DiscordAccountChanged(user.id))  # no more channel access
