"""Reading progress the database could not take (a section marked read, a heartbeat),
kept on local disk until it is back (lens/db/spool.py). The reader was told it counted;
it is applied later as it was when acknowledged, in the order it came."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.courses.service import apply_completion, apply_heartbeat
from lens.db.spool import Spool, save_or_spool
from lens.settings import Settings


async def write_progress(session: AsyncSession, record: dict[str, Any]) -> bool | int:
    """Apply one record: {"what": "complete" | "heartbeat", ...} (completion_record,
    heartbeat_record)."""
    if record.get("what") == "complete":
        return await apply_completion(session, record)
    if record.get("what") == "heartbeat":
        return await apply_heartbeat(session, record)
    raise ValueError(f"not a progress record: {record.get('what')!r}")


def progress_spool(settings: Settings) -> Spool:
    return Spool(
        Path(settings.var_dir) / "spool" / "progress", write=write_progress, kind="reading.progress"
    )


async def save_progress(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, record: dict[str, Any]
) -> tuple[bool, bool | int | None]:
    """Apply `record` now, or keep it in the progress spool while the database is away:
    (saved now, what applying it returned, None when kept for later)."""
    return await save_or_spool(sessionmaker, write_progress, record, spool=progress_spool(settings))
