"""Sync: read the source, validate, store a snapshot, make it current.

A snapshot is the content files of one commit plus the images that content embeds. A
commit whose content is the same as the current snapshot's (a README, `.obsidian/`, an
image nothing embeds) stores nothing: the snapshot keeps its commit, and the next
incremental sync compares from there.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from lens.content.files import is_asset
from lens.content.models import (
    ContentAsset,
    ContentFile,
    ContentSnapshot,
    ContentState,
    WebhookDelivery,
)
from lens.content.parsed import ContentSet
from lens.content.parsing import file_kind, load_content
from lens.content.sources import ContentSource, Tree
from lens.db.base import utcnow
from lens.logging import get_logger

log = get_logger("lens.content")

KEEP_SNAPSHOTS = 3
_INSERT_BATCH = 500


@dataclass(frozen=True)
class SyncResult:
    changed: bool  # a new snapshot is current
    commit: str  # the source's head
    files: int
    invalid: int
    full: bool
    seconds: float
    assets: int = 0  # images the content embeds, kept with the snapshot
    # When the head moved but its content is the current snapshot's: that snapshot's
    # commit, which it keeps (None otherwise).
    unchanged_since: str | None = None


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


async def get_snapshot_assets(session: AsyncSession, *, snapshot_id: int) -> dict[str, str | None]:
    """Every image listed with the snapshot -> the SHA-256 of its kept bytes, or None for
    one in the repository that the content does not embed (not kept)."""
    rows = await session.execute(
        select(ContentAsset.path, ContentAsset.sha256).where(
            ContentAsset.snapshot_id == snapshot_id
        )
    )
    return {path: sha for path, sha in rows.all()}


async def get_asset_hash(session: AsyncSession, *, snapshot_id: int, path: str) -> str | None:
    """The SHA-256 of an image the snapshot keeps, or None when it keeps none at `path`."""
    return await session.scalar(
        select(ContentAsset.sha256).where(
            ContentAsset.snapshot_id == snapshot_id,
            ContentAsset.path == path,
            ContentAsset.data.is_not(None),
        )
    )


async def get_asset_data(session: AsyncSession, *, snapshot_id: int, path: str) -> bytes | None:
    """The bytes of an image the snapshot keeps, or None when it keeps none at `path`."""
    return await session.scalar(
        select(ContentAsset.data).where(
            ContentAsset.snapshot_id == snapshot_id, ContentAsset.path == path
        )
    )


async def _kept_asset_data(
    session: AsyncSession, *, snapshot_id: int, paths: list[str]
) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for start in range(0, len(paths), _INSERT_BATCH):
        rows = await session.execute(
            select(ContentAsset.path, ContentAsset.data).where(
                ContentAsset.snapshot_id == snapshot_id,
                ContentAsset.path.in_(paths[start : start + _INSERT_BATCH]),
            )
        )
        found.update({path: data for path, data in rows.all() if data is not None})
    return found


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
    # The snapshot to diff from and compare with: the current one, when it came from
    # this source and lists its images.
    base = None
    if current is not None and current.source == source.name and current.assets_listed:
        base = current
    if base is not None and base.commit_sha == head and not force_full:
        state.last_attempt_at = state.last_success_at = utcnow()
        state.last_error = None
        await session.flush()
        return SyncResult(False, head, base.file_count, base.invalid_count, False, 0.0)

    read = await _read_tree(
        session, source=source, head=head, base=base, force_full=force_full, progress=progress
    )
    files, assets = read.tree.files, read.tree.assets
    progress(f"parsing and validating {len(files)} files ({len(assets)} images present)")
    content = await asyncio.to_thread(load_content, files, frozenset(assets))
    kept = await _kept_hashes(source, head, content.assets_used, assets, read.unchanged)

    if base is not None:
        old_files = read.old_files
        if old_files is None:
            old_files = await get_snapshot_files(session, snapshot_id=base.id)
        old_assets = read.old_assets
        if old_assets is None:
            old_assets = await get_snapshot_assets(session, snapshot_id=base.id)
        old_kept = {path: sha for path, sha in old_assets.items() if sha is not None}
        if files == old_files and kept == old_kept:
            state.last_attempt_at = state.last_success_at = utcnow()
            state.last_error = None
            await session.flush()
            log.info(
                "content.sync.unchanged",
                commit=head[:12],
                snapshot_commit=base.commit_sha[:12],
                files=len(files),
                assets=len(kept),
                full=read.full,
            )
            return SyncResult(
                False,
                head,
                len(files),
                content.invalid,
                read.full,
                time.perf_counter() - started,
                assets=len(kept),
                unchanged_since=base.commit_sha,
            )
    full = read.full
    seconds = time.perf_counter() - started
    snapshot = ContentSnapshot(
        source=source.name,
        commit_sha=head,
        file_count=len(files),
        invalid_count=content.invalid,
        sync_seconds=round(seconds, 3),
        full_sync=full,
    )
    progress(f"storing the snapshot ({content.invalid} invalid files, {len(kept)} images)")
    session.add(snapshot)
    await session.flush()
    rows = [{"snapshot_id": snapshot.id, "path": p, "text": t} for p, t in files.items()]
    for start in range(0, len(rows), _INSERT_BATCH):
        await session.execute(insert(ContentFile), rows[start : start + _INSERT_BATCH])
    # Kept images unchanged since the current snapshot are copied from it.
    copied = [p for p in kept if assets.get(p) is None]
    if copied and base is not None:
        assets.update(await _kept_asset_data(session, snapshot_id=base.id, paths=copied))
    asset_rows = [
        {
            "snapshot_id": snapshot.id,
            "path": path,
            "sha256": kept.get(path),
            "data": assets[path] if path in kept else None,
        }
        for path in sorted(assets)
    ]
    for start in range(0, len(asset_rows), _INSERT_BATCH):
        await session.execute(insert(ContentAsset), asset_rows[start : start + _INSERT_BATCH])
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
        assets=len(kept),
        invalid=content.invalid,
        full=full,
        seconds=round(seconds, 3),
    )
    return SyncResult(True, head, len(files), content.invalid, full, seconds, assets=len(kept))


@dataclass
class _Read:
    tree: Tree
    full: bool
    # Incremental only: the current snapshot's files and images, and the images known
    # unchanged since it (their kept hashes stand in for bytes not read again).
    old_files: dict[str, str] | None = None
    old_assets: dict[str, str | None] | None = None
    unchanged: dict[str, str | None] = field(default_factory=dict)


async def _read_tree(
    session: AsyncSession,
    *,
    source: ContentSource,
    head: str,
    base: ContentSnapshot | None,
    force_full: bool,
    progress: Progress,
) -> _Read:
    """The source's files at `head`: the current snapshot's plus what changed since its
    commit when the source can say, else every file."""
    if base is not None and not force_full:
        progress(f"fetching changes {base.commit_sha[:12]}..{head[:12]}")
        changes = await source.changes(base.commit_sha, head)
        if changes is not None:
            old_files = await get_snapshot_files(session, snapshot_id=base.id)
            old_assets = await get_snapshot_assets(session, snapshot_id=base.id)
            tree = Tree(dict(old_files), dict.fromkeys(old_assets))
            unchanged = dict(old_assets)
            for change in changes:
                if change.deleted:
                    tree.files.pop(change.path, None)
                    tree.assets.pop(change.path, None)
                    unchanged.pop(change.path, None)
                elif change.data is not None and is_asset(change.path):
                    tree.assets[change.path] = change.data
                    unchanged.pop(change.path, None)
                elif change.unread and is_asset(change.path):
                    tree.assets[change.path] = None  # there, changed: read if embedded
                    unchanged.pop(change.path, None)
                elif change.text is not None and file_kind(change.path) is not None:
                    tree.files[change.path] = change.text
            return _Read(tree, False, old_files, old_assets, unchanged)
    progress(f"fetching every file at {head[:12]}")
    return _Read(await source.fetch_all(head), True)


async def _kept_hashes(
    source: ContentSource,
    head: str,
    used: set[str],
    assets: dict[str, bytes | None],
    unchanged: dict[str, str | None],
) -> dict[str, str]:
    """The images a snapshot keeps (those the content embeds) -> the SHA-256 of their
    bytes, reading from the source the bytes not at hand. Fills `assets` with them."""
    hashes: dict[str, str] = {}
    unread: list[str] = []
    for path in sorted(used & assets.keys()):
        data = assets[path]
        if data is not None:
            hashes[path] = _sha256(data)
        elif (sha := unchanged.get(path)) is not None:
            hashes[path] = sha  # kept by the current snapshot and unchanged since
        else:
            unread.append(path)
    if unread:
        read = await source.read_assets(head, unread)
        for path in unread:
            if path in read:
                assets[path] = read[path]
                hashes[path] = _sha256(read[path])
            else:  # gone or too large since it was listed
                log.warning("content.asset.unreadable", path=path, commit=head[:12])
    return dict(sorted(hashes.items()))


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
        await session.execute(delete(ContentAsset).where(ContentAsset.snapshot_id.in_(old)))
        await session.execute(delete(ContentSnapshot).where(ContentSnapshot.id.in_(old)))


async def load_current(session: AsyncSession) -> tuple[int, ContentSnapshot | None, ContentSet]:
    """The current version, its snapshot row, and its parsed content."""
    state = await get_state(session)
    if state.snapshot_id is None:
        return state.version, None, ContentSet()
    snapshot = await session.get(ContentSnapshot, state.snapshot_id)
    files = await get_snapshot_files(session, snapshot_id=state.snapshot_id)
    # Every image listed, as the sync parsed it, so embeds resolve the same way.
    assets = frozenset(await get_snapshot_assets(session, snapshot_id=state.snapshot_id))
    content = await asyncio.to_thread(load_content, files, assets)
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
    invalid: dict[str, list[str]]  # files that cannot be served -> every problem line
    warnings: dict[str, list[str]]  # files served, with warnings -> their lines
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
        invalid={
            p: [str(x) for x in ps]
            for p, ps in sorted(content.problems.items())
            if any(x.is_error for x in ps)
        },
        warnings={
            p: [str(x) for x in ps]
            for p, ps in sorted(content.problems.items())
            if ps and not any(x.is_error for x in ps)
        },
        last_attempt_at=state.last_attempt_at,
        last_error=state.last_error,
    )


DELIVERIES_KEPT = timedelta(days=30)


async def take_delivery(session: AsyncSession, *, delivery_id: str) -> bool:
    """Record a webhook delivery's id; False when it was taken before (a replay)."""
    await session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.received_at < utcnow() - DELIVERIES_KEPT)
    )
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    taken = await session.execute(
        upsert(WebhookDelivery)
        .values(delivery_id=delivery_id, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=[WebhookDelivery.delivery_id])
        .returning(WebhookDelivery.delivery_id)
    )
    return taken.scalar_one_or_none() is not None
