"""The job system's own housekeeping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from lens.db.base import utcnow
from lens.jobs.models import Job, JobStatus
from lens.jobs.periodic import every
from lens.jobs.registry import JobContext, job
from lens.logging import get_logger

log = get_logger("lens.jobs")

KEEP_SUCCEEDED = timedelta(days=14)


@job("jobs.prune")
async def prune_finished_jobs(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Delete succeeded jobs after two weeks; failed ones stay for an admin to see."""
    result = await ctx.session.execute(
        delete(Job).where(
            Job.status == JobStatus.SUCCEEDED, Job.finished_at < utcnow() - KEEP_SUCCEEDED
        )
    )
    log.info("jobs.prune.done", deleted=result.rowcount)  # type: ignore[attr-defined]


every("jobs.prune", timedelta(days=1))
