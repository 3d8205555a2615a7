"""Keeping Google Calendar in line with the meetings, off the requests that change them,
and reading the invitations' answers back as RSVPs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lens.errors import IntegrationRejected
from lens.jobs.periodic import every
from lens.jobs.registry import JobContext, job
from lens.logging import get_logger
from lens.meetings.calendar import (
    RSVP_SYNC_KIND,
    calendar_for,
    record_rejection,
    sync_meeting_event,
    sync_rsvps,
)
from lens.meetings.service import CALENDAR_SYNC_KIND
from lens.settings import ConfigError

log = get_logger("lens.meetings")

# Retries of a temporary failure (Google down, rate limit, invitation quota spent) back
# off 10 s, 20 s, ... 43 min: about 85 minutes in all before the job shows as failed.
CALENDAR_SYNC_ATTEMPTS = 10


@job(CALENDAR_SYNC_KIND, max_attempts=CALENDAR_SYNC_ATTEMPTS)
async def calendar_sync(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Create, move or cancel one meeting's Google Calendar event. IntegrationUnavailable
    propagates, so the runner retries with back-off; a refusal (or an unreadable
    credentials file) is recorded instead, as retrying cannot help."""
    meeting_id = int(payload["meeting_id"])
    try:
        calendar = calendar_for(ctx)
        if calendar is None:
            return  # Google Calendar not configured: iCal feeds and attachments only
        outcome = await sync_meeting_event(
            ctx.session, calendar=calendar, meeting_id=meeting_id, base_url=ctx.settings.public_url
        )
    except (IntegrationRejected, ConfigError) as exc:
        await record_rejection(ctx.session, ctx=ctx, payload=payload, error=exc)
        return
    log.info("meetings.calendar.synced", meeting=meeting_id, outcome=outcome)


@job(RSVP_SYNC_KIND, max_attempts=3)
async def rsvp_sync(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Read the answers to next week's meeting invitations into RSVPs (every 6 hours)."""
    try:
        calendar = calendar_for(ctx)
        if calendar is None:
            return
        changed = await sync_rsvps(ctx.session, calendar=calendar)
    except (IntegrationRejected, ConfigError) as exc:
        await record_rejection(ctx.session, ctx=ctx, payload=payload, error=exc)
        return
    log.info("meetings.rsvps.synced", changed=changed)


every(RSVP_SYNC_KIND, timedelta(hours=6))
