"""Sync: read the source, validate, store a snapshot, make it current."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.content.models import ContentFile, ContentSnapshot, ContentState
from lens.content.parsed import ContentSet
from lens.content.parsing import file_kind, load_content
from lens.content.sources import ContentSource
from lens.db.base import utcnow
from lens.logging import get_logger

log = get_logger("lens.content")

KEEP_SNAPSHOTS = 3
_INSERT_BATCH = 500


@dataclass(frozen=True)
class SyncResult:
    changed: bool
    commit: str
    files: int
    invalid: int
    full: bool
    seconds: float


async def get_state(session: AsyncSession, *, lock: bool = False) -> ContentState:
    """The single state row, created on first use. `lock` serialises syncs."""
    query = select(ContentState).where(ContentState.id == 1)
    if lock:
        query = query.with_for_update()
    state = await session.scalar(query)
    if state is None:
        state = ContentState(id=1, version=0)
        session.add(state)
        await session.flush()
        if lock:
            state = await session.scalar(query)
            assert state is not None
    return state


async def get_snapshot_files(session: AsyncSession, *, snapshot_id: int) -> dict[str, str]:
    rows = await session.execute(
        select(ContentFile.path, ContentFile.text).where(ContentFile.snapshot_id == snapshot_id)
    )
    return {path: text for path, text in rows.all()}


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


async def sync_content(
    session: AsyncSession,
    *,
    source: ContentSource,
    force_full: bool = False,
    progress: Progress = _quiet,
) -> SyncResult:
    """Bring the stored snapshot up to the source's head.

    Holds the state row lock for the whole sync, so syncs never overlap (a second one
    waits, then finds nothing to do). Raises when the source cannot be read; the caller
    records that and the current snapshot stays.
    """
    started = time.perf_counter()
    progress("waiting for any other sync to finish")
    state = await get_state(session, lock=True)
    current = await session.get(ContentSnapshot, state.snapshot_id) if state.snapshot_id else None
    progress(f"reading the head of {source.name}")
    head = await source.head()
    same_source = current is not None and current.source == source.name
    if same_source and current is not None and current.commit_sha == head and not force_full:
        state.last_attempt_at = state.last_success_at = utcnow()
        state.last_error = None
        await session.flush()
        return SyncResult(False, head, current.file_count, current.invalid_count, False, 0.0)

    files: dict[str, str] | None = None
    if same_source and current is not None and not force_full:
        progress(f"fetching changes {current.commit_sha[:12]}..{head[:12]}")
        changes = await source.changes(current.commit_sha, head)
        if changes is not None:
            files = await get_snapshot_files(session, snapshot_id=current.id)
            for change in changes:
                if change.text is None:
                    files.pop(change.path, None)
                elif file_kind(change.path) is not None:
                    files[change.path] = change.text
    full = files is None
    if files is None:
        progress(f"fetching every file at {head[:12]}")
        files = await source.fetch_all(head)
    progress(f"parsing and validating {len(files)} files")
    content = await asyncio.to_thread(load_content, files)
    seconds = time.perf_counter() - started
    snapshot = ContentSnapshot(
        source=source.name,
        commit_sha=head,
        file_count=len(files),
        invalid_count=content.invalid,
        sync_seconds=round(seconds, 3),
        full_sync=full,
    )
    progress(f"storing the snapshot ({content.invalid} invalid files)")
    session.add(snapshot)
    await session.flush()
    rows = [{"snapshot_id": snapshot.id, "path": p, "text": t} for p, t in files.items()]
    for start in range(0, len(rows), _INSERT_BATCH):
        await session.execute(insert(ContentFile), rows[start : start + _INSERT_BATCH])
    state.snapshot_id = snapshot.id
    state.version += 1
    state.last_attempt_at = state.last_success_at = utcnow()
    state.last_error = None
    await session.flush()
    await _prune(session, keep=snapshot.id)
    log.info(
        "content.sync.done",
        commit=head[:12],
        files=len(files),
        invalid=content.invalid,
        full=full,
        seconds=round(seconds, 3),
    )
    return SyncResult(True, head, len(files), content.invalid, full, seconds)


async def record_sync_failure(session: AsyncSession, *, error: str) -> None:
    state = await get_state(session)
    state.last_attempt_at = utcnow()
    state.last_error = error[:2000]
    await session.flush()
    log.warning("content.sync.failed", error=error)


async def _prune(session: AsyncSession, *, keep: int) -> None:
    recent = select(ContentSnapshot.id).order_by(ContentSnapshot.id.desc()).limit(KEEP_SNAPSHOTS)
    keep_ids = set(await session.scalars(recent)) | {keep}
    old = list(
        await session.scalars(select(ContentSnapshot.id).where(ContentSnapshot.id.not_in(keep_ids)))
    )
    if old:
        # Files first: SQLite only cascades with foreign keys on, and this keeps both
        # dialects doing the same.
        await session.execute(delete(ContentFile).where(ContentFile.snapshot_id.in_(old)))
        await session.execute(delete(ContentSnapshot).where(ContentSnapshot.id.in_(old)))


async def load_current(session: AsyncSession) -> tuple[int, ContentSnapshot | None, ContentSet]:
    """The current version, its snapshot row, and its parsed content."""
    state = await get_state(session)
    if state.snapshot_id is None:
        return state.version, None, ContentSet()
    snapshot = await session.get(ContentSnapshot, state.snapshot_id)
    files = await get_snapshot_files(session, snapshot_id=state.snapshot_id)
    content = await asyncio.to_thread(load_content, files)
    return state.version, snapshot, content


async def current_version(session: AsyncSession) -> int:
    version = await session.scalar(select(ContentState.version).where(ContentState.id == 1))
    return int(version or 0)


@dataclass(frozen=True)
class ContentStatus:
    source: str
    commit: str | None
    synced_at: datetime | None
    sync_seconds: float | None
    full_sync: bool | None
    files: int
    courses: int
    modules: int
    invalid: dict[str, list[str]]  # path -> problem lines
    last_attempt_at: datetime | None
    last_error: str | None


async def get_status(
    session: AsyncSession, *, source_name: str, content: ContentSet | None = None
) -> ContentStatus:
    """What operators see: where content comes from, how the last sync went, what is wrong."""
    state = await get_state(session)
    snapshot = await session.get(ContentSnapshot, state.snapshot_id) if state.snapshot_id else None
    if content is None:
        _, _, content = await load_current(session)
    return ContentStatus(
        source=snapshot.source if snapshot else source_name,
        commit=snapshot.commit_sha if snapshot else None,
        synced_at=snapshot.created_at if snapshot else None,
        sync_seconds=snapshot.sync_seconds if snapshot else None,
        full_sync=snapshot.full_sync if snapshot else None,
        files=snapshot.file_count if snapshot else 0,
        courses=len(content.courses),
        modules=len(content.modules),
        invalid={p: [str(x) for x in ps] for p, ps in sorted(content.problems.items()) if ps},
        last_attempt_at=state.last_attempt_at,
        last_error=state.last_error,
    )
