"""Grouping as a job: a large cohort takes the solver tens of seconds, longer than a
request should wait; the preview page shows the run's progress."""

from __future__ import annotations

from typing import Any

from lens.errors import LensError
from lens.jobs.registry import JobContext, job
from lens.logging import get_logger
from lens.scheduling.service import GROUP_KIND, run_grouping

log = get_logger("lens.scheduling")


@job(GROUP_KIND, max_attempts=1)
async def group_cohort(ctx: JobContext, payload: dict[str, Any]) -> None:
    from lens.cohorts.models import GroupingRun

    run = await ctx.session.get(GroupingRun, int(payload["run_id"]))
    if run is None or run.status not in ("queued", "running"):
        return
    try:
        async with ctx.session.begin_nested():
            await run_grouping(ctx.session, run=run)
    except LensError as exc:
        run.status, run.error = "failed", exc.message
    except Exception as exc:
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("scheduling.run.failed", run=run.id)
