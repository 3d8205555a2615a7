"""Work already acknowledged that the database could not take: kept on local disk until
the database is back.

A tutor reply that reached the learner, a section marked read, a minute of reading
counted: once Lens has said yes, losing it is a lie. `save_or_spool` writes such a record
through a few retries with backoff; when the database still cannot be reached it writes
the record here as one JSON file (written whole, then renamed into place) and returns.
`Spool.flush` saves the files later, oldest first, through the same `write` function, so
a record is applied as it would have been (with the time it was acknowledged, which the
record carries). Each web process flushes at start and every few seconds while files
wait (lens/app/factory.py). A file is claimed by renaming it first, so two processes
sharing the folder never save one record twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.db.engine import unit_of_work
from lens.db.outage import database_unavailable
from lens.logging import get_logger

log = get_logger("lens.db.spool")

Write = Callable[[AsyncSession, dict[str, Any]], Awaitable[Any]]

SAVE_TRIES = (0.5, 1.0, 2.0)  # seconds before each retry of a save


class Spool:
    """One folder of records of one kind, and the function that saves one of them."""

    def __init__(self, directory: Path, *, write: Write, kind: str) -> None:
        self.directory = directory
        self.write = write
        self.kind = kind

    def put(self, record: dict[str, Any]) -> Path:
        """Keep one record (JSON-serialisable) on disk, synced before this returns."""
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
        """Save what waits, oldest first; stops at the first outage (the database is
        still away) and leaves the rest for the next time. Returns how many were saved.
        A record that fails for another reason (unreadable, refused by the database) is
        set aside as `.bad`, logged, and not retried forever."""
        saved = 0
        for path in self.waiting():
            claimed = path.with_suffix(f".{os.getpid()}.claimed")
            try:
                os.rename(path, claimed)
            except FileNotFoundError:
                continue  # another process took it
            try:
                record = json.loads(claimed.read_text(encoding="utf-8"))
                if not isinstance(record, dict):
                    raise TypeError("not a JSON object")
                async with unit_of_work(sessionmaker) as session:
                    await self.write(session, record)
            except Exception as exc:
                if database_unavailable(exc):
                    os.rename(claimed, path)
                    log.warning(
                        "spool.flush_failed",
                        kind=self.kind,
                        waiting=len(self.waiting()),
                        error=repr(exc),
                    )
                    break
                os.rename(claimed, path.with_suffix(".bad"))
                log.error("spool.record_set_aside", kind=self.kind, file=str(path), error=repr(exc))
                continue
            claimed.unlink()
            saved += 1
        if saved:
            log.info("spool.flushed", kind=self.kind, saved=saved, waiting=len(self.waiting()))
        return saved


async def save_or_spool(
    sessionmaker: async_sessionmaker[AsyncSession],
    write: Write,
    record: dict[str, Any],
    *,
    spool: Spool | None,
    tries: Sequence[float] | None = None,
    outage: Callable[[BaseException], bool] = database_unavailable,
) -> tuple[bool, Any]:
    """`write(session, record)` now, retrying after each pause in `tries` (SAVE_TRIES) while the
    failure is an `outage`; then keep the record in `spool` (whose write must be the
    same). Returns (saved now, what `write` returned, or None when spooled). A failure
    that is not an outage (a bug, a refusal) is raised at once, and so is the last
    outage when there is no spool."""
    kind = spool.kind if spool is not None else "unspooled"
    for attempt, pause in enumerate((*(SAVE_TRIES if tries is None else tries), None)):
        try:
            async with unit_of_work(sessionmaker) as session:
                result = await write(session, record)
            return True, result
        except Exception as exc:
            if not outage(exc):
                raise
            if pause is not None:
                log.warning("spool.save_retry", kind=kind, attempt=attempt + 1, error=repr(exc))
                await asyncio.sleep(pause)
                continue
            if spool is None:
                raise
            spool.put(record)
            log.error("spool.kept", kind=kind, error=repr(exc))
    return False, None


async def keep_flushing(
    spools: Sequence[Spool], sessionmaker: async_sessionmaker[AsyncSession], *, every: float = 10.0
) -> None:
    """Run for the life of a web process: save what waits once the database is back."""
    while True:
        for spool in spools:
            if spool.waiting():
                try:
                    await spool.flush(sessionmaker)
                except Exception as exc:  # never let the flusher die
                    log.error("spool.flusher_error", kind=spool.kind, error=repr(exc))
        await asyncio.sleep(every)
