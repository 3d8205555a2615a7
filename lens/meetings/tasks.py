"""Telling a group about itself and its meetings, off the approving request."""

from __future__ import annotations

from typing import Any

from lens.jobs.registry import JobContext, job
from lens.logging import get_logger
from lens.meetings.service import ANNOUNCE_KIND, announce_group

log = get_logger("lens.meetings")


@job(ANNOUNCE_KIND)
async def announce(ctx: JobContext, payload: dict[str, Any]) -> None:
    added = await announce_group(
        ctx.session, group_id=int(payload["group_id"]), user_ids=payload.get("user_ids")
    )
    log.info("meetings.announced", group=payload["group_id"], deliveries=added)
