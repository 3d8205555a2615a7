"""Replies that end together are saved together (lens.tutor.service.ReplySaves), each
with its own id, its budget hold let go; a batch that fails is saved reply by reply."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from lens.db.base import utcnow
from lens.db.spool import Spool
from lens.tutor import service
from lens.tutor.models import BudgetHold, Conversation, Message
from lens.tutor.service import ReplySaves
from lens.tutor.spool import write_reply
from tests.tutor.test_starts import Counting


def record(conversation_id: int, text: str, hold_id: int | None = None) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "content": text,
        "status": "complete",
        "model": "fake/tutor",
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "cost_usd": 0.001,
        "created_at": utcnow().isoformat(),
        "hold_id": hold_id,
    }


async def _conversation_and_holds(db: Any, holds: int) -> tuple[int, list[int]]:
    talk = Conversation(actor="a:x", module_key="m", content_id="c", segment_index=0)
    db.add(talk)
    rows = [BudgetHold(amount_usd=0.01) for _ in range(holds)]
    db.add_all(rows)
    await db.commit()
    return talk.id, [row.id for row in rows]


async def test_replies_ending_together_share_a_transaction(sessionmaker, db) -> None:
    talk, holds = await _conversation_and_holds(db, 30)
    counting = Counting(sessionmaker)
    saves = ReplySaves(counting, spool=None)  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(saves.save(record(talk, f"reply {n}", holds[n])) for n in range(30))
    )
    assert counting.opened <= 2
    assert all(saved for saved, _ in results)
    by_id = dict((await db.execute(select(Message.id, Message.content))).all())
    assert [by_id[id_] for _, id_ in results] == [f"reply {n}" for n in range(30)]
    assert await db.scalar(select(func.count()).select_from(BudgetHold)) == 0


async def test_a_failing_batch_is_saved_one_by_one_and_the_bad_one_spooled(
    sessionmaker, db, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(service, "SAVE_TRIES", (0.01,))
    talk, _ = await _conversation_and_holds(db, 0)
    spool = Spool(tmp_path / "spool", write=write_reply, kind="tutor.reply")
    saves = ReplySaves(sessionmaker, spool=spool)
    bad = record(talk, "never fits")
    bad["content"] = None  # NOT NULL: this one cannot be written
    results = await asyncio.gather(
        saves.save(record(talk, "first")),  # alone in the first batch
        saves.save(record(talk, "second")),
        saves.save(bad),
        saves.save(record(talk, "fourth")),
    )
    assert [saved for saved, _ in results] == [True, True, False, True]
    stored = (await db.scalars(select(Message.content).order_by(Message.id))).all()
    assert stored == ["first", "second", "fourth"]
    assert len(spool.waiting()) == 1  # kept on disk, not lost
