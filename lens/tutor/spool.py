"""Tutor replies the database could not take, kept on local disk until it is back
(lens/db/spool.py). A reply that reached the learner is work the site has acknowledged,
and its tokens were paid for; it is saved later with the time it was given, so its
tokens count for the day they were spent, and its budget hold is let go in the same
transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, delete, insert, or_
from sqlalchemy.ext.asyncio import AsyncSession

from lens.db.base import utcnow
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
        await release_hold(session, int(record["hold_id"]))
    await session.flush()
    return message.id


async def write_replies(session: AsyncSession, records: list[dict[str, Any]]) -> list[int]:
    """Save several replies (as `write_reply`) in two statements; their ids, in order."""
    table = cast(Table, Message.__table__)
    rows = await session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True),
        [
            {
                "role": "assistant",
                "created_at": datetime.fromisoformat(record["created_at"]),
                **{name: record[name] for name in FIELDS},
            }
            for record in records
        ],
    )
    ids = [int(row[0]) for row in rows]
    holds = [int(r["hold_id"]) for r in records if r.get("hold_id") is not None]
    if holds:
        await session.execute(
            delete(BudgetHold).where(
                or_(BudgetHold.id.in_(holds), BudgetHold.created_at < utcnow() - timedelta(days=1))
            )
        )
    return ids


async def release_hold(session: AsyncSession, hold_id: int) -> None:
    """Let a reply's budget hold go, and with it any a dead process left behind a day ago
    (they stopped counting long before): kept out of `hold_budget`, under its lock."""
    await session.execute(
        delete(BudgetHold).where(
            or_(BudgetHold.id == hold_id, BudgetHold.created_at < utcnow() - timedelta(days=1))
        )
    )


def spool_for(settings: Settings) -> Spool:
    return Spool(Path(settings.var_dir) / "spool" / "tutor", write=write_reply, kind="tutor.reply")
