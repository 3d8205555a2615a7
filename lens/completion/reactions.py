"""When a cohort finishes, its certificates are issued (in a job: it reads the course).
Completion is evaluated continuously: someone who completes after the end (a module
read late, attendance corrected) gets theirs by the same job, without an admin."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lens.cohorts.events import CohortFinished
from lens.cohorts.models import Cohort, CohortStatus, Role, Signup
from lens.completion.models import Certificate
from lens.completion.tasks import CERTIFY_KIND
from lens.courses.events import ModuleCompleted
from lens.events import reaction
from lens.jobs.service import enqueue
from lens.meetings.events import AttendanceRecorded


@reaction(CohortFinished)
async def certify_on_finish(session: AsyncSession, event: CohortFinished) -> None:
    await enqueue(
        session,
        kind=CERTIFY_KIND,
        payload={"cohort_id": event.cohort_id},
        dedupe_key=f"certify:{event.cohort_id}",
    )


@reaction(ModuleCompleted)
async def certify_late_reading(session: AsyncSession, event: ModuleCompleted) -> None:
    """A module completed after the cohort finished may complete the reader: the
    finished cohorts they took part in without a certificate yet look again."""
    cohorts = await session.scalars(
        select(Signup.cohort_id)
        .join(Cohort, Cohort.id == Signup.cohort_id)
        .outerjoin(Certificate, Certificate.signup_id == Signup.id)
        .where(
            Signup.user_id == event.user_id,
            Signup.role == Role.PARTICIPANT,
            Cohort.status == CohortStatus.FINISHED,
            Certificate.id.is_(None),
        )
    )
    for cohort_id in cohorts.all():
        await enqueue(
            session,
            kind=CERTIFY_KIND,
            payload={"cohort_id": cohort_id},
            dedupe_key=f"certify:{cohort_id}:{event.user_id}:{event.module_key}",
        )


@reaction(AttendanceRecorded)
async def certify_corrected_attendance(session: AsyncSession, event: AttendanceRecorded) -> None:
    """Attendance corrected after the end may complete someone."""
    cohort = await session.get(Cohort, event.cohort_id)
    if cohort is not None and cohort.status == CohortStatus.FINISHED:
        await enqueue(session, kind=CERTIFY_KIND, payload={"cohort_id": cohort.id})
