"""When a cohort finishes, its certificates are issued (in a job: it reads the course)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.events import CohortFinished
from lens.completion.tasks import CERTIFY_KIND
from lens.events import reaction
from lens.jobs.service import enqueue


@reaction(CohortFinished)
async def certify_on_finish(session: AsyncSession, event: CohortFinished) -> None:
    await enqueue(
        session,
        kind=CERTIFY_KIND,
        payload={"cohort_id": event.cohort_id},
        dedupe_key=f"certify:{event.cohort_id}",
    )
