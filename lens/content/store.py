"""The in-memory parsed content every process serves from.

Each process keeps the parsed current snapshot and checks the database's content
version every few seconds; when another process (a sync job, a webhook) has made a new
snapshot current, this one reloads it. Requests never wait for a reload: they see the
previous content until the new one is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lens.content.models import ContentSnapshot
from lens.content.parsed import ContentSet
from lens.content.service import current_version, load_current
from lens.db.engine import READ_ONLY
from lens.logging import get_logger

log = get_logger("lens.content")


class ContentStore:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        poll_seconds: float = 2.0,
        prepare: Callable[[ContentSet], dict[object, object]] | None = None,
    ) -> None:
        """`prepare`: work derived from a snapshot done before it is served (the web
        process renders every section), in a thread: the first reader after a content
        push does not wait for it, and the event loop never does it."""
        self.sessionmaker = sessionmaker
        self.poll_seconds = poll_seconds
        self.prepare = prepare
        self.content = ContentSet()
        self.snapshot: ContentSnapshot | None = None
        self.version = -1
        # Per-snapshot memo for work derived from the immutable parsed content (rendered
        # sections): cleared whenever another snapshot is loaded.
        self.memo: dict[object, object] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> bool:
        """Reload when the stored version differs from ours; True when it did."""
        async with self._lock:
            async with self.sessionmaker() as session:
                await _read_only(session)
                version = await current_version(session)
                if version == self.version:
                    return False
                version, snapshot, content = await load_current(session)
            memo: dict[object, object] = {}
            if self.prepare is not None:
                memo = await asyncio.to_thread(self.prepare, content)
            self.version, self.snapshot, self.content = version, snapshot, content
            self.memo = memo
            log.info(
                "content.store.loaded",
                version=version,
                commit=snapshot.commit_sha[:12] if snapshot else None,
                modules=len(content.modules),
                invalid=content.invalid,
                warnings=content.warning_count,
            )
            for module in content.modules.values():
                if module.notes:
                    # Served without what it could not use: say so where operators look.
                    log.warning(
                        "content.module.partial",
                        module=module.path,
                        left_out=len(module.notes),
                        first=module.notes[0],
                    )
            return True

    @property
    def loaded(self) -> ContentSet | None:
        """The parsed content, or None before the first load."""
        return self.content if self.version >= 0 else None

    async def open(self) -> ContentStore:
        """Load what there is (a failure is logged: serve, and keep trying) and poll."""
        try:
            await self.refresh()
        except Exception as exc:  # e.g. migrations not applied yet
            log.error("content.store.load_failed", error=f"{type(exc).__name__}: {exc}")
        self.start()
        return self

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="lens-content-store")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.refresh()
            except Exception as exc:  # keep serving what we have
                log.warning("content.store.refresh_failed", error=repr(exc))


async def _read_only(session: AsyncSession) -> None:
    connection = await session.connection(execution_options=READ_ONLY)
    del connection
