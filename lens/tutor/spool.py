"""Tutor replies that could not be saved: kept on local disk until the database is back.

A reply that reached the learner is work the site has acknowledged, and its tokens were
paid for. When saving it fails even after retries (the database is down or restarting),
the reply is written here as one JSON file (written whole, then renamed into place), and
`flush` saves the files later, with the time the reply was given, so its tokens count for
the day they were spent. Each web process flushes at start and every few seconds while
files wait (lens/app/factory.py). A file is claimed by renaming it first, so two
processes sharing the folder never save one reply twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.db.engine import unit_of_work
from lens.logging import get_logger
from lens.settings import Settings
from lens.tutor.models import BudgetHold, Message

log = get_logger("lens.tutor")

FIELDS = (
    "conversation_id",
    "content",
    "status",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
)


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, record: dict[str, Any]) -> Path:
        """Keep one reply (the FIELDS and `created_at`, an ISO time) on disk."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{uuid.uuid4().hex}"
        partial = self.directory / f".{name}.tmp"
        with partial.open("w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        final = self.directory / f"{name}.json"
        os.replace(partial, final)
        return final

    def waiting(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.json"))

    async def flush(self, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        """Save what waits, oldest first; stops at the first failure (the database is
        still away) and leaves the rest for the next time. Returns how many were saved."""
        saved = 0
        for path in self.waiting():
            claimed = path.with_suffix(f".{os.getpid()}.claimed")
            try:
                os.rename(path, claimed)
            except FileNotFoundError:
                continue  # another process took it
            try:
                record = json.loads(claimed.read_text(encoding="utf-8"))
                created = datetime.fromisoformat(record["created_at"])
                values = {name: record[name] for name in FIELDS}
            except (ValueError, KeyError, TypeError) as exc:
                # Unreadable (a disk fault, a hand edit): set aside, not retried forever.
                os.rename(claimed, path.with_suffix(".bad"))
                log.error("tutor.spool.unreadable", file=str(path), error=repr(exc))
                continue
            try:
                async with unit_of_work(sessionmaker) as session:
                    session.add(Message(role="assistant", created_at=created, **values))
                    if record.get("hold_id") is not None:
                        await session.execute(
                            delete(BudgetHold).where(BudgetHold.id == int(record["hold_id"]))
                        )
            except Exception as exc:
                os.rename(claimed, path)
                log.warning(
                    "tutor.spool.flush_failed", waiting=len(self.waiting()), error=repr(exc)
                )
                break
            claimed.unlink()
            saved += 1
        if saved:
            log.info("tutor.spool.flushed", saved=saved, waiting=len(self.waiting()))
        return saved


def spool_for(settings: Settings) -> Spool:
    return Spool(Path(settings.var_dir) / "spool" / "tutor")


async def keep_flushing(
    spool: Spool, sessionmaker: async_sessionmaker[AsyncSession], *, every: float = 10.0
) -> None:
    """Run for the life of a web process: save what waits once the database is back."""
    while True:
        if spool.waiting():
            try:
                await spool.flush(sessionmaker)
            except Exception as exc:  # never let the flusher die
                log.error("tutor.spool.flusher_error", error=repr(exc))
        await asyncio.sleep(every)
