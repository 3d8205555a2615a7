from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from lens.db.base import utcnow
from lens.jobs.models import Job, JobStatus
from lens.jobs.registry import registry

# Keys starting with this are released when the job starts running (see `coalesce`).
COALESCE_PREFIX = "coalesce:"


def coalesce(name: str) -> str:
    """A dedupe key that merges enqueues only while a job is waiting.

    Ten pushes in a row while a sync job is queued add nothing; a push that arrives
    while the sync runs queues exactly one more.
    """
    return COALESCE_PREFIX + name


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any] | None = None,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int | None = None,
) -> int | None:
    """Add a job in the caller's transaction; it runs only if that transaction commits.

    Returns the job id, or None when a job with the same `dedupe_key` already exists
    (whatever its status), so repeating an enqueue for the same reason is harmless.
    """
    if run_at is not None and run_at.tzinfo is None:
        raise ValueError("run_at must be timezone-aware")
    if max_attempts is None:
        known = registry.get(kind)
        max_attempts = known.max_attempts if known else 5
    now = utcnow()
    values = {
        "kind": kind,
        "payload": payload or {},
        "run_at": run_at or now,
        "status": JobStatus.QUEUED,
        "attempts": 0,
        "max_attempts": max_attempts,
        "dedupe_key": dedupe_key,
        "created_at": now,
        "updated_at": now,
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(Job).values(**values)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=[Job.dedupe_key])
    result = await session.execute(stmt.returning(Job.id))
    return result.scalar_one_or_none()


async def retry_failed(session: AsyncSession, *, job_id: int) -> bool:
    """Put a failed job back in the queue with fresh attempts (an admin action)."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.FAILED)
        .values(status=JobStatus.QUEUED, attempts=0, run_at=utcnow(), finished_at=None)
        .returning(Job.id)
    )
    return result.scalar_one_or_none() is not None


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {str(status): n for status, n in rows.all()}


async def list_failed(session: AsyncSession, *, limit: int = 50) -> list[Job]:
    rows = await session.scalars(
        select(Job)
        .where(Job.status == JobStatus.FAILED)
        .order_by(Job.finished_at.desc())
        .limit(limit)
    )
    return list(rows)


def backoff(attempt: int, *, base: float = 10.0, cap: float = 3600.0) -> timedelta:
    """Delay before retry number `attempt` (1-based): 10 s, 20 s, 40 s, ... up to 1 h."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))
