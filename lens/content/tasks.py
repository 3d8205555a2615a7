"""Content sync as a job: coalesced, never overlapping, retried after rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lens.content.service import record_sync_failure, sync_content
from lens.content.sources import source_from_settings
from lens.db.base import utcnow
from lens.errors import IntegrationUnavailable
from lens.integrations.github import RateLimited
from lens.jobs.registry import JobContext, job
from lens.jobs.service import coalesce, enqueue
from lens.logging import get_logger

log = get_logger("lens.content")

SYNC_KIND = "content.sync"
SYNC_KEY = coalesce(SYNC_KIND)
RETRY_LATER = timedelta(minutes=2)
MAX_RETRY_WAIT = timedelta(hours=1)


async def request_sync(
    session: Any, *, full: bool = False, run_at: datetime | None = None
) -> int | None:
    """Queue a sync unless one is already waiting (pushes in a burst become one sync)."""
    return await enqueue(
        session, kind=SYNC_KIND, payload={"full": full}, dedupe_key=SYNC_KEY, run_at=run_at
    )


@job(SYNC_KIND, max_attempts=1)
async def run_sync(ctx: JobContext, payload: dict[str, Any]) -> None:
    if ctx.http is None:
        raise RuntimeError("content sync needs the shared HTTP client")
    source = source_from_settings(ctx.settings, ctx.http)
    try:
        async with ctx.session.begin_nested():
            await sync_content(ctx.session, source=source, force_full=bool(payload.get("full")))
    except IntegrationUnavailable as exc:
        # GitHub down or rate-limited: keep serving the last snapshot, try again later.
        retry_at = utcnow() + RETRY_LATER
        if isinstance(exc, RateLimited):
            retry_at = max(retry_at, datetime.fromtimestamp(exc.retry_at, UTC))
        retry_at = min(retry_at, utcnow() + MAX_RETRY_WAIT)
        await record_sync_failure(ctx.session, error=f"{exc}; retrying at {retry_at:%H:%M} UTC")
        await request_sync(ctx.session, full=bool(payload.get("full")), run_at=retry_at)
    except Exception as exc:
        # Bad repository name, token refused, ...: an admin has to act; the status
        # page shows this message.
        await record_sync_failure(ctx.session, error=f"{type(exc).__name__}: {exc}")
