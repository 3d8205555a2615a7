"""Notification work that runs as jobs (the sender, sender.py, runs beside the job runner)."""

from __future__ import annotations

from typing import Any

from lens.jobs.registry import JobContext, job
from lens.logging import get_logger
from lens.notifications.announce import ANNOUNCE_KIND, announce_group

log = get_logger("lens.notifications")


@job(ANNOUNCE_KIND)
async def announce(ctx: JobContext, payload: dict[str, Any]) -> None:
    user_ids = payload.get("user_ids")
    added = await announce_group(
        ctx.session,
        group_id=int(payload["group_id"]),
        user_ids=user_ids,
        message=payload.get("message", True),
    )
    log.info("notifications.announced", group=payload["group_id"], deliveries=added)
