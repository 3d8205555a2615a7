"""Notification work that runs as jobs (the sender, sender.py, runs beside the job runner)."""

from __future__ import annotations

from typing import Any

from lens.jobs.registry import JobContext, job
from lens.logging import get_logger
from lens.meetings.service import request_group_calendar_sync
from lens.notifications.announce import ANNOUNCE_KIND, announce_group

log = get_logger("lens.meetings")


@job(ANNOUNCE_KIND)
async def announce(ctx: JobContext, payload: dict[str, Any]) -> None:
    user_ids = payload.get("user_ids")
    added = await announce_group(ctx.session, group_id=int(payload["group_id"]), user_ids=user_ids)
    if user_ids is not None:
        # Someone joined late: invite them to the calendar events of the meetings ahead
        # (the events of a new group were queued when its meetings were made).
        await request_group_calendar_sync(ctx.session, group_id=int(payload["group_id"]))
    log.info("meetings.announced", group=payload["group_id"], deliveries=added)
