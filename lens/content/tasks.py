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
# GitHub's advice for a secondary rate limit that keeps failing: "wait for an
# exponentially increasing amount of time between retries, and throw an error after a
# specific number of retries". Waits of at least 1, 2, 4, 8, 16 and 32 minutes.
SECONDARY_BACKOFF = timedelta(minutes=1)
SECONDARY_RETRIES = 6


async def request_sync(
    session: Any,
    *,
    full: bool = False,
    run_at: datetime | None = None,
    rate_limited: int = 0,
) -> int | None:
    """Queue a sync unless one is already waiting (pushes in a burst become one sync).
    `rate_limited`: how many syncs in a row met a secondary rate limit."""
    payload: dict[str, Any] = {"full": full}
    if rate_limited:
        payload["rate_limited"] = rate_limited
    return await enqueue(
        session, kind=SYNC_KIND, payload=payload, dedupe_key=SYNC_KEY, run_at=run_at
    )


@job(SYNC_KIND, max_attempts=1)
async def run_sync(ctx: JobContext, payload: dict[str, Any]) -> None:
    if ctx.http is None:
        raise RuntimeError("content sync needs the shared HTTP client")
    source = source_from_settings(ctx.settings, ctx.http)
    full = bool(payload.get("full"))
    try:
        async with ctx.session.begin_nested():
            await sync_content(ctx.session, source=source, force_full=full)
    except RateLimited as exc:
        # Keep serving the last snapshot; no request to GitHub before the wait it asked for.
        now = utcnow()
        retry_at = datetime.fromtimestamp(exc.retry_at, UTC)
        limited = 0
        if exc.secondary:
            limited = int(payload.get("rate_limited") or 0) + 1
            if limited > SECONDARY_RETRIES:
                await record_sync_failure(
                    ctx.session,
                    error=f"{exc}; gave up after {SECONDARY_RETRIES} retries: the next push "
                    "or `lens content sync` tries again",
                )
                return
            if limited > 1:
                retry_at = max(retry_at, now + SECONDARY_BACKOFF * 2 ** (limited - 1))
        else:
            retry_at += timedelta(seconds=1)  # the reset is in whole seconds
        retry_at = min(max(retry_at, now), now + MAX_RETRY_WAIT)
        await _retry(ctx, exc, full=full, retry_at=retry_at, rate_limited=limited)
    except IntegrationUnavailable as exc:
        # GitHub down or unreachable: keep serving the last snapshot, try again later.
        await _retry(ctx, exc, full=full, retry_at=utcnow() + RETRY_LATER)
    except Exception as exc:
        # Bad repository name, token refused, ...: an admin has to act; the status
        # page shows this message.
        await record_sync_failure(ctx.session, error=f"{type(exc).__name__}: {exc}")


async def _retry(
    ctx: JobContext,
    exc: Exception,
    *,
    full: bool,
    retry_at: datetime,
    rate_limited: int = 0,
) -> None:
    await record_sync_failure(ctx.session, error=f"{exc}; retrying at {retry_at:%H:%M:%S} UTC")
    await request_sync(ctx.session, full=full, run_at=retry_at, rate_limited=rate_limited)
    log.info(
        "content.sync.retry_later",
        retry_at=retry_at.isoformat(),
        rate_limited=rate_limited,
        error=str(exc),
    )
