"""Tutor replies the database could not take, kept on local disk until it is back
(lens/db/spool.py). A reply that reached the learner is work the site has acknowledged,
and its tokens were paid for; it is saved later with the time it was given, so its
tokens count for the day they were spent, and its budget hold is let go in the same
transaction."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from lens.db.spool import Spool
from lens.settings import Settings
from lens.tutor.models import BudgetHold, Message

FIELDS = (
    "conversation_id",
    "content",
    "status",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
)


async def write_reply(session: AsyncSession, record: dict[str, Any]) -> int:
    """Save one reply (the FIELDS, `created_at` as an ISO time, and `hold_id`, the budget
    hold it replaces); returns the message's id."""
    message = Message(
        role="assistant",
        created_at=datetime.fromisoformat(record["created_at"]),
        **{name: record[name] for name in FIELDS},
    )
    session.add(message)
    if record.get("hold_id") is not None:
        # Its own cost counts from now: in the same transaction, never both, never neither.
        await session.execute(delete(BudgetHold).where(BudgetHold.id == int(record["hold_id"])))
    await session.flush()
    return message.id


def spool_for(settings: Settings) -> Spool:
    return Spool(Path(settings.var_dir) / "spool" / "tutor", write=write_reply, kind="tutor.reply")
